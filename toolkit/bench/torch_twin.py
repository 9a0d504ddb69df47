"""PyTorch twin of one CausalFusion training step, for `npm run bench` ratios only (never used by tests).

Reads a JSON plan on stdin: {"config": {...}, "batch": N, "splits": [[sizes...], ...], "threads": k, "warmup": w,
"device": "cpu" | "cuda", "precision": "fp32" | "tf32" | "bf16"} and replays exactly those AR-step splits (so
both sides do the same work), timing forward + backward + clip_grad_norm_(1.0) + AdamW(0.9, 0.95, eps 1e-15) +
EMA(0.9999) per step (on CUDA up to a synchronize, eager mode; bf16 is autocast). Prints one JSON line.
With "mode": "sample" ({"config", "batch", "arSteps", "diffusionSteps", "repeats", "threads"}) it times the
sampler instead: S AR steps of equal size in a random order, each a DDPM chain with a KV cache (the official
`_forward_kv_cache`: condition tokens and finished steps cached, the current step attends to cache + itself),
guidance when "cfgScale" > 1, under torch.inference_mode; "device" and "precision" ("bf16": autocast) as above.
With "mode": "matmul" ({"shapes": [[M, N, K, tA, tB], ...], "repeats"}) it times torch.matmul alone on CUDA.
The model follows the official CausalDiffusionModel (pre-LN blocks, QK-norm, GELU-tanh, in-context
condition tokens, t-embedding on noisy tokens, generalized causal mask)."""
import json
import math
import resource
import sys
import time

import torch
import torch.nn as nn
import torch.nn.functional as F


class Attention(nn.Module):
    def __init__(self, dim, heads):
        super().__init__()
        self.heads, self.hd = heads, dim // heads
        self.qkv = nn.Linear(dim, 3 * dim, bias=False)
        self.proj = nn.Linear(dim, dim)
        self.q_norm, self.k_norm = nn.LayerNorm(self.hd), nn.LayerNorm(self.hd)

    def forward(self, x, mask, cache=None):
        n, l, _ = x.shape
        q, k, v = self.qkv(x).reshape(n, l, 3, self.heads, self.hd).permute(2, 0, 3, 1, 4).unbind(0)
        q = self.q_norm(q) * self.hd ** -0.5
        k = self.k_norm(k)
        if cache is not None:  # sampling: attend to the cache + this chunk, unmasked; "update" keeps the chunk
            if "k" in cache:
                k, v = torch.cat([cache["k"], k], 2), torch.cat([cache["v"], v], 2)
            if cache.get("update"):
                cache["k"], cache["v"] = k, v
        s = q @ k.transpose(-2, -1)
        a = (s if mask is None else s + mask).softmax(-1)
        return self.proj((a @ v).transpose(1, 2).reshape(n, l, -1))


class Block(nn.Module):
    def __init__(self, dim, heads):
        super().__init__()
        self.norm1, self.norm2 = nn.LayerNorm(dim), nn.LayerNorm(dim)
        self.attn = Attention(dim, heads)
        self.mlp = nn.Sequential(nn.Linear(dim, 4 * dim), nn.GELU(approximate="tanh"), nn.Linear(4 * dim, dim))

    def forward(self, x, mask, cache=None):
        x = x + self.attn(self.norm1(x), mask, cache)
        return x + self.mlp(self.norm2(x))


class Model(nn.Module):
    def __init__(self, c):
        super().__init__()
        D, d = c["hiddenSize"], c["patchSize"] ** 2 * c["latentChannels"]
        self.c, self.L = c, (c["inputSize"] // c["patchSize"]) ** 2
        self.x_proj = nn.Linear(d, D)
        self.t_mlp = nn.Sequential(nn.Linear(256, D), nn.SiLU(), nn.Linear(D, D))
        self.table = nn.Embedding(c["numClasses"] + 1, D * c["numCondTokens"])
        self.pos_embed = nn.Parameter(torch.randn(1, self.L, D) * 0.02)
        self.cond_pos = nn.Parameter(torch.randn(1, c["numCondTokens"], D) * 0.02)
        self.blocks = nn.ModuleList([Block(D, c["numHeads"]) for _ in range(c["depth"])])
        self.final = nn.Sequential(nn.LayerNorm(D), nn.Linear(D, d))

    def t_freq(self, t):
        half = 128
        freqs = torch.exp(-math.log(10000) * torch.arange(half, dtype=torch.float32, device=t.device) / half)
        a = t[:, None].float() * freqs[None]
        return torch.cat([torch.cos(a), torch.sin(a)], -1)

    def forward(self, xt, t, x0, y, mask, last, noise, ids):
        n, L, D = x0.shape[0], self.L, self.c["hiddenSize"]
        x = self.x_proj(x0) + self.pos_embed
        xn = self.x_proj(xt) + self.pos_embed
        g = ids.unsqueeze(-1)
        x = torch.gather(x, 1, g.expand(-1, -1, D))[:, : L - last]
        xn = torch.gather(xn, 1, g.expand(-1, -1, D)) + self.t_mlp(self.t_freq(t))[:, None]
        noise = torch.gather(noise, 1, g.expand(-1, -1, noise.shape[-1]))
        cond = self.table(y).reshape(n, self.c["numCondTokens"], D) + self.cond_pos
        h = torch.cat([cond, x, xn], 1)
        for b in self.blocks:
            h = b(h, mask)
        return (noise - self.final(h[:, -L:])) ** 2


    def run_cached(self, h, caches, update):
        for b, c in zip(self.blocks, caches):
            c["update"] = update
            h = b(h, None, c)
        return h

    @torch.inference_mode()
    def sample(self, y, S, steps, cfg=1.0):
        """S AR steps x a DDPM chain of `steps` steps (linear betas respaced), KV cache, CFG when cfg > 1 (cache
        rows [cond; null], guided eps = u + cfg (c - u)); returns [n, L, d]."""
        n, L, D, dev = y.shape[0], self.L, self.c["hiddenSize"], y.device
        d = self.x_proj.in_features
        betas = torch.linspace(1e-4, 0.02, 1000, dtype=torch.float64)
        ac = torch.cumprod(1 - betas, 0)[torch.linspace(0, 999, steps).round().long()]
        acp = torch.cat([torch.ones(1, dtype=torch.float64), ac[:-1]])
        b = 1 - ac / acp
        c1, c2 = (b * acp.sqrt() / (1 - ac)).float().tolist(), ((1 - acp) * (1 - b).sqrt() / (1 - ac)).float().tolist()
        r1, r2, sd = (1 / ac).sqrt().float().tolist(), (1 / ac - 1).sqrt().float().tolist(), b.sqrt().float().tolist()
        guided = cfg > 1
        rows = torch.cat([y, torch.full_like(y, self.c["numClasses"])]) if guided else y
        caches = [{} for _ in self.blocks]
        cond = self.table(rows).reshape(rows.shape[0], self.c["numCondTokens"], D) + self.cond_pos
        self.run_cached(cond, caches, True)
        order = torch.argsort(torch.rand(n, L, device=dev), 1)
        pos = torch.gather(self.pos_embed.expand(n, -1, -1), 1, order.unsqueeze(-1).expand(-1, -1, D))
        both = (lambda a: torch.cat([a, a])) if guided else (lambda a: a)
        out, start = [], 0
        for k in [L // S + (i < L % S) for i in range(S)]:
            p = both(pos[:, start:start + k])
            x = torch.randn(n, k, d, device=dev)
            for i in reversed(range(steps)):
                t = torch.full((rows.shape[0],), i, device=dev)
                h = self.x_proj(both(x)) + p + self.t_mlp(self.t_freq(t))[:, None]
                eps = self.final(self.run_cached(h, caches, False)).float()
                if guided:
                    c, u = eps.chunk(2)
                    eps = u + cfg * (c - u)
                x0 = (r1[i] * x - r2[i] * eps).clamp(-1, 1)
                x = c1[i] * x0 + c2[i] * x + (sd[i] * torch.randn_like(x) if i > 0 else 0)
            self.run_cached(self.x_proj(both(x)) + p, caches, True)
            out.append(x)
            start += k
        return torch.cat(out, 1)


def attn_mask(L, cond, sizes, device):
    cs = [0]
    for s in sizes:
        cs.append(cs[-1] + s)
    vis = L - sizes[-1]
    ctx = cond + vis
    m = torch.ones(ctx + L, ctx + L, dtype=torch.bool)
    m[:, :cond] = False
    for i in range(len(sizes) - 1):
        m[cond + cs[i]:cond + cs[i + 1], cond:cond + cs[i + 1]] = False
        m[ctx + cs[i + 1]:ctx + cs[i + 2], cond:cond + cs[i + 1]] = False
    for i in range(len(sizes)):
        m[ctx + cs[i]:ctx + cs[i + 1], ctx + cs[i]:ctx + cs[i + 1]] = False
    return torch.zeros(m.shape).masked_fill_(m, float("-inf")).to(device)


def bench_sampling(plan):
    c, dev = plan["config"], plan.get("device", "cpu")
    sync = torch.cuda.synchronize if dev == "cuda" else (lambda: None)
    model = Model(c).to(dev).eval()
    y = torch.arange(plan["batch"], device=dev) % c["numClasses"]
    bf16 = plan.get("precision") == "bf16"
    if dev == "cuda":
        torch.cuda.reset_peak_memory_stats()
    times = []
    for r in range(plan.get("repeats", 3) + 1):
        sync()
        start = time.perf_counter()
        with torch.autocast(device_type=dev, dtype=torch.bfloat16, enabled=bf16):
            model.sample(y, plan["arSteps"], plan["diffusionSteps"], plan.get("cfgScale", 1.0))
        sync()
        if r > 0:  # the first run warms up
            times.append((time.perf_counter() - start) * 1000)
    times.sort()
    print(json.dumps({
        "medianMs": times[len(times) // 2], "threads": torch.get_num_threads(), "torch": torch.__version__,
        "device": dev, "precision": "bf16" if bf16 else "fp32",
        "gpu": torch.cuda.get_device_name() if dev == "cuda" else None,
        "peakGpuMb": torch.cuda.max_memory_allocated() / 2**20 if dev == "cuda" else None,
    }))


def bench_matmul(plan):
    """Milliseconds of torch.matmul per [M, N, K, tA, tB] in bf16 and in fp32 (TF32 off), median of CUDA-event runs."""
    torch.backends.cuda.matmul.allow_tf32 = False
    out = []
    for M, N, K, tA, tB in plan["shapes"]:
        row = {}
        for name, dtype in (("bf16", torch.bfloat16), ("fp32", torch.float32)):
            a = torch.randn(*((K, M) if tA else (M, K)), device="cuda", dtype=dtype)
            b = torch.randn(*((N, K) if tB else (K, N)), device="cuda", dtype=dtype)
            a, b = (a.t() if tA else a), (b.t() if tB else b)
            torch.matmul(a, b)
            times = []
            for _ in range(plan.get("repeats", 10)):
                start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
                start.record()
                torch.matmul(a, b)
                end.record()
                torch.cuda.synchronize()
                times.append(start.elapsed_time(end))
            row[name] = sorted(times)[len(times) // 2]
        out.append(row)
    print(json.dumps({"ms": out, "torch": torch.__version__, "gpu": torch.cuda.get_device_name()}))


def main():
    plan = json.load(sys.stdin)
    torch.set_num_threads(plan.get("threads", 1))
    torch.manual_seed(0)
    if plan.get("mode") == "sample":
        return bench_sampling(plan)
    if plan.get("mode") == "matmul":
        return bench_matmul(plan)
    c, N = plan["config"], plan["batch"]
    dev, precision = plan.get("device", "cpu"), plan.get("precision", "fp32")
    torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = precision == "tf32"
    sync = torch.cuda.synchronize if dev == "cuda" else (lambda: None)
    model = Model(c).to(dev)
    if dev == "cuda":
        torch.cuda.reset_peak_memory_stats()
    ema = [p.detach().clone() for p in model.parameters()]
    opt = torch.optim.AdamW(model.parameters(), lr=1e-4, betas=(0.9, 0.95), eps=1e-15, weight_decay=0)
    L, d = model.L, c["patchSize"] ** 2 * c["latentChannels"]
    times = []
    for i, sizes in enumerate(plan["splits"]):
        x0, noise = torch.randn(N, L, d, device=dev), torch.randn(N, L, d, device=dev)
        t = torch.randint(0, 1000, (N,), device=dev)
        y = torch.randint(0, c["numClasses"], (N,), device=dev)
        ids = torch.argsort(torch.rand(N, L, device=dev), 1)
        w = torch.ones(1, L, 1, device=dev)
        sync()
        start = time.perf_counter()
        mask = attn_mask(L, c["numCondTokens"], sizes, dev)
        with torch.autocast(device_type=dev, dtype=torch.bfloat16, enabled=precision == "bf16"):
            loss = (model(x0 + noise, t, x0, y, mask, sizes[-1], noise, ids) * w).float().mean()
        opt.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        with torch.no_grad():
            for e, p in zip(ema, model.parameters()):
                e.mul_(0.9999).add_(p, alpha=1 - 0.9999)
        sync()
        if i >= plan.get("warmup", 1):
            times.append((time.perf_counter() - start) * 1000)
    times.sort()
    print(json.dumps({
        "medianMs": times[len(times) // 2], "minMs": times[0], "maxMs": times[-1], "steps": len(times),
        "threads": torch.get_num_threads(), "torch": torch.__version__, "device": dev, "precision": precision,
        "gpu": torch.cuda.get_device_name() if dev == "cuda" else None,
        "peakRssMb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "peakGpuMb": torch.cuda.max_memory_reserved() / 2**20 if dev == "cuda" else None,
    }))


if __name__ == "__main__":
    main()
