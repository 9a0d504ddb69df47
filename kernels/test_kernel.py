"""Jupyter's own kernel test suite (jupyter_kernel_test) against the CausalFusion (TypeScript) kernel.

Run by `npm test` after `node kernels/install.js --prefix <tmp>`, with JUPYTER_PATH=<tmp>/share/jupyter.
Beyond the protocol checks: the toolkit imports with one line, the backend was chosen at start-up, and a long
training cell stops cleanly through an AbortSignal.
"""
import base64
import re
import shutil
import tempfile
import unittest

import jupyter_kernel_test as jkt
from jupyter_client.manager import start_new_kernel


class CausalFusionKernelTests(jkt.KernelTests):
    kernel_name = "causalfusion"
    language_name = "typescript"
    file_extension = ".ts"

    @classmethod
    def setUpClass(cls):
        # start in a folder outside the repository: the one-line import must still work there
        cls.cwd = tempfile.mkdtemp(prefix="cf-notebook-folder-")
        cls.km, cls.kc = start_new_kernel(kernel_name=cls.kernel_name, cwd=cls.cwd)

    @classmethod
    def tearDownClass(cls):
        super().tearDownClass()
        shutil.rmtree(cls.cwd, ignore_errors=True)

    code_hello_world = 'console.log("hello, world")'
    code_stderr = 'console.error("to stderr")'
    code_display_data = [
        {"code": 'import * as tslab from "tslab"; tslab.display.html("<b>hi</b>")', "mime": "text/html"},
        {"code": 'import * as tslab from "tslab"; tslab.display.png(new Uint8Array([137, 80, 78, 71]))', "mime": "image/png"},
    ]
    completion_samples = [{"text": "Math.PI.toFi", "matches": {"toFixed"}}]

    # tslab has no pager or history; execute_result, error and clear_output come from our start-up module
    test_pager = test_history = None
    code_execute_result = [
        {"code": "6 * 7", "result": "42"},
        {"code": "const s: string = 'a'; s + 'b'", "result": "'ab'"},
    ]
    code_generate_error = 'throw new RangeError("boom")'
    code_clear_output = 'import * as cf from "causalfusion"; cf.clearOutput(true)'
    code_inspect_sample = "Math.max"
    complete_code_samples = ["1 + 1", "function f() { return 1; }"]
    incomplete_code_samples = ["function f() {"]

    def run_cell(self, code, timeout=120):
        self.flush_channels()
        reply, outputs = self.execute_helper(code=code, timeout=timeout)
        text = "".join(m["content"].get("text", "") for m in outputs if m["msg_type"] == "stream")
        return reply, outputs, text

    def results(self, outputs):
        return [m["content"] for m in outputs if m["msg_type"] == "execute_result"]

    def test_runtime_error_is_an_error_message_with_the_cells_lines(self):
        reply, outputs, text = self.run_cell(
            "function f(x: number): number {\n"
            '  if (x > 2) throw new RangeError("boom " + x);\n'
            "  return x;\n"
            "}\n"
            "const y: number = 3;\n"
            "f(y);"
        )
        self.assertEqual(reply["content"]["status"], "error")
        errors = [m["content"] for m in outputs if m["msg_type"] == "error"]
        self.assertEqual(len(errors), 1)
        self.assertEqual(text, "")  # not printed on stderr as well
        err = errors[0]
        self.assertEqual((err["ename"], err["evalue"]), ("RangeError", "boom 3"))
        self.assertEqual(err["traceback"][0], "RangeError: boom 3")
        self.assertEqual(
            [l.strip() for l in err["traceback"][1:]],
            ['at f (cell line 2): if (x > 2) throw new RangeError("boom " + x);', "at cell line 6: f(y);"],
        )
        self.assertFalse(any("node:vm" in l or "evalmachine" in l for l in err["traceback"]))
        for k in ("ename", "evalue", "traceback"):
            self.assertEqual(reply["content"][k], err[k])

    def test_awaited_rejection_is_an_error_message(self):
        reply, outputs, _ = self.run_cell('await Promise.reject(new TypeError("late"));')
        errors = [m["content"] for m in outputs if m["msg_type"] == "error"]
        self.assertEqual(reply["content"]["status"], "error")
        self.assertEqual([(e["ename"], e["evalue"]) for e in errors], [("TypeError", "late")])

    def test_type_error_is_an_error_message_at_its_line_and_column(self):
        reply, outputs, text = self.run_cell("const ok = 1;\nconst n: number = 'not a number';")
        self.assertEqual(reply["content"]["status"], "error")
        errors = [m["content"] for m in outputs if m["msg_type"] == "error"]
        self.assertEqual(len(errors), 1)
        self.assertEqual(text, "")
        self.assertEqual(errors[0]["ename"], "TSError")
        self.assertIn("not assignable", errors[0]["evalue"])
        self.assertIn("  cell line 2, column 7:", errors[0]["traceback"])
        self.assertEqual(reply["content"]["ename"], "TSError")

    def test_last_expression_is_an_execute_result_with_its_count(self):
        reply, outputs, text = self.run_cell("const big = Array.from({ length: 100000 }, (_, i) => i);\nbig")
        self.assertEqual(reply["content"]["status"], "ok")
        self.assertEqual(text, "")
        [res] = self.results(outputs)
        self.assertEqual(res["execution_count"], reply["content"]["execution_count"])
        plain = res["data"]["text/plain"]
        self.assertTrue(plain.startswith("[") and " 49," in plain, plain[:40])
        self.assertIn("more items", plain)  # bounded
        self.assertLess(len(plain), 25_000)
        reply, outputs, _ = self.run_cell("const nothing = undefined;\nnothing")
        self.assertEqual(self.results(outputs), [])  # undefined shows nothing

    def test_deno_display_convention(self):
        _, outputs, _ = self.run_cell(
            "({ [Symbol.for('Jupyter.display')]() { return { 'text/markdown': '**hi**', 'text/plain': 'hi' }; } })"
        )
        [res] = self.results(outputs)
        self.assertEqual(res["data"], {"text/markdown": "**hi**", "text/plain": "hi"})

    def test_a_model_shows_its_card(self):
        reply, outputs, _ = self.run_cell('import * as cf from "causalfusion";\ncf.loadModel("mnist-small")')
        self.assertEqual(reply["content"]["status"], "ok", reply["content"])
        [res] = self.results(outputs)
        self.assertIn("cf-model-card", res["data"]["text/html"])
        self.assertIn("preset <code>mnist-small</code>", res["data"]["text/html"])
        self.assertRegex(
            res["data"]["text/plain"],
            r"^CausalFusion model \(mnist-small\): 16 tokens \(4 x 4 patches of 7 x 7 x 1\), 0\.\d\d M parameters, v-prediction, cosine schedule, from mnist-small \(shipped: data/mnist-small\.safetensors\)$",
        )

    def test_shows_a_chart_as_last_expression_with_its_library_first(self):
        _, outputs, _ = self.run_cell(
            'import * as cf from "causalfusion";\n'
            "cf.arStepStatsChart([cf.arStepStats(16, 0.9, { draws: 200 })])"
        )
        kinds = [m["msg_type"] for m in outputs if m["msg_type"] in ("display_data", "execute_result")]
        self.assertEqual(kinds[-1], "execute_result")
        [res] = self.results(outputs)
        self.assertIn('class="cf-chart"', res["data"]["text/html"])
        self.assertIn("application/vnd.vegalite.v5+json", res["data"])

    def test_samples_recorders_and_history_show_themselves(self):
        _, outputs, _ = self.run_cell(
            'import * as cf from "causalfusion";\n'
            "await cf.backendReady();\n"
            "const m = cf.loadModel('mnist-small');\n"
            "const rec = new cf.SamplingRecorder({ attention: { layers: [0], diffusionSteps: [0] } });\n"
            "const r = cf.sampleImages(m, { labels: [1, 2], arSteps: 2, diffusionSteps: '5', seed: 1, observer: rec });\n"
            "r",
            timeout=120,
        )
        [res] = self.results(outputs)
        png = base64.b64decode(res["data"]["image/png"])
        self.assertEqual(png[1:4], b"PNG")
        self.assertIn("2 samples [1, 28, 28] in 2 AR steps", res["data"]["text/plain"])
        _, outputs, _ = self.run_cell("rec")
        [res] = self.results(outputs)
        self.assertIn("SamplingRecorder", res["data"]["text/html"])
        self.assertIn("attention maps", res["data"]["text/html"])
        self.assertRegex(res["data"]["text/plain"], r"SamplingRecorder: 2 AR steps of generation order\n\d+ attention records")
        _, outputs, _ = self.run_cell(
            "const ds = cf.loadMnist('test');\n"
            "const t = new cf.Trainer(ds, { model: 'mnist-small', batchSize: 4 });\n"
            "const steps = new cf.TrainingRecorder();\n"
            "await t.run({ steps: 4, logEvery: 2, callbacks: { onStep: steps.onStep } });\n"
            "t.history",
            timeout=120,
        )
        [res] = self.results(outputs)
        self.assertIn("application/vnd.plotly.v1+json", res["data"])
        self.assertIn("training history: 2 log events, last at step 4", res["data"]["text/plain"])
        _, outputs, _ = self.run_cell("t")
        [res] = self.results(outputs)
        self.assertTrue(res["data"]["text/plain"].startswith("Trainer at step 4: 2 log events"))
        _, outputs, _ = self.run_cell("steps")
        [res] = self.results(outputs)
        self.assertIn("TrainingRecorder</b>: 4 steps recorded", res["data"]["text/html"])

    def test_live_display_updates_in_place(self):
        _, outputs, _ = self.run_cell(
            'import * as cf from "causalfusion";\n'
            "const d = cf.newDisplay();\n"
            "d.show(cf.imageGrid(new Float32Array(16), 1, 1, 4, 4));\n"
            "d.show(cf.imageGrid(new Float32Array(16).fill(1), 1, 1, 4, 4));"
        )
        shown = [m for m in outputs if m["msg_type"] in ("display_data", "update_display_data")]
        self.assertEqual([m["msg_type"] for m in shown], ["display_data", "update_display_data"])
        ids = {m["content"]["transient"]["display_id"] for m in shown}
        self.assertEqual(len(ids), 1)

    def test_toolkit_imports_and_reports_backend(self):
        reply, _, text = self.run_cell(
            'import * as cf from "causalfusion";\n'
            "const report = await cf.backendReady();\n"
            "console.log(report.chosen, cf.backendReport()?.chosen, cf.makeConfig('mnist-small').patchSize, process.cwd().includes('cf-notebook-folder-'));"
        )
        self.assertEqual(reply["content"]["status"], "ok", reply["content"])
        chosen, again, patch, outside = text.split()
        self.assertEqual(outside, "true")
        self.assertIn(chosen, {"tensorflow", "webgpu", "wasm", "cpu"})
        self.assertEqual(chosen, again)  # the start-up choice, not a second initialisation
        self.assertEqual(patch, "7")

    def test_charts_carry_static_fallback_and_send_each_library_once(self):
        reply, outputs, _ = self.run_cell(
            'import * as cf from "causalfusion";\n'
            "const m = cf.getAttnMask(16, 1, [4, 12]);\n"
            "const pos = cf.describeSequence(16, 1, cf.fromSizes([4, 12], 16));\n"
            "cf.display(cf.maskChart(m, pos));\n"
            "cf.display(cf.maskChart(m, pos, { colorBy: 'step' }));\n"
            "cf.display(cf.arStepStatsChart([cf.arStepStats(16, 0.9, { draws: 200 })]));\n"
            "cf.display(cf.arStepStatsChart([cf.arStepStats(16, 1.0, { draws: 200 })]));",
            timeout=60,
        )
        self.assertEqual(reply["content"]["status"], "ok", reply["content"])
        shown = [m["content"]["data"] for m in outputs if m["msg_type"] == "display_data"]
        kinds = ["setup" if "cf-viz-setup" in d["text/html"] else "chart" for d in shown]
        # d3 + runtime before the first d3 view, vega before the first vega-lite chart, nothing re-sent
        self.assertEqual(kinds, ["setup", "chart", "chart", "setup", "chart", "chart"])
        self.assertNotIn("if(!window.vegaEmbed)", shown[0]["text/html"])
        self.assertIn("if(!window.vegaEmbed)", shown[3]["text/html"])
        self.assertIn("if(!window.causalfusionViz)", shown[0]["text/html"])
        self.assertNotIn("if(!window.causalfusionViz)", shown[3]["text/html"])  # the runtime is not sent again
        for d in (shown[1], shown[2], shown[4], shown[5]):
            # the static picture is the chart's SVG, as an <img> (sanitizers keep it)
            img = re.search(r'<div class="cf-static"><img alt="[^"]*" src="data:image/svg\+xml;base64,([^"]+)"', d["text/html"])
            self.assertIsNotNone(img)
            self.assertEqual(base64.b64decode(img.group(1)).decode(), d["image/svg+xml"])
            self.assertTrue(d["image/svg+xml"].startswith("<svg"))
            self.assertLess(len(d["text/html"]), 200_000)
        # vega-lite charts also travel under the ecosystem's MIME type, as a JSON object (not a string)
        for d in (shown[4], shown[5]):
            spec = d["application/vnd.vegalite.v5+json"]
            self.assertEqual(spec["$schema"], "https://vega.github.io/schema/vega-lite/v5.json")
            self.assertIn("hconcat", spec)
        self.assertNotIn("application/vnd.vegalite.v5+json", shown[1])  # d3 views have no native type

    def test_long_training_cell_stops_through_abort_signal(self):
        reply, _, text = self.run_cell(
            'import * as cf from "causalfusion";\n'
            "await cf.backendReady();\n"
            "const ds = cf.loadMnist('test');\n"
            "const trainer = new cf.Trainer(ds, { model: 'mnist-small', batchSize: 8 });\n"
            "const stop = new AbortController();\n"
            "setTimeout(() => stop.abort(), 1500);\n"
            "const summary = await trainer.run({ steps: 100000, signal: stop.signal, logEvery: 0 });\n"
            "console.log(summary.stoppedBy, summary.steps > 0 && summary.steps < 100000);\n"
            "trainer.dispose();",
            timeout=90,
        )
        self.assertEqual(reply["content"]["status"], "ok", reply["content"])
        self.assertEqual(text.split(), ["signal", "true"])


if __name__ == "__main__":
    unittest.main()
