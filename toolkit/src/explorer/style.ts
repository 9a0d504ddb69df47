/** The explorer page's style sheet (one screen on a laptop; panels wrap on narrow windows). */
export const EXPLORER_CSS = `
*{box-sizing:border-box}
body{margin:0;font:14px/1.4 system-ui,sans-serif;color:#222;background:#f6f6f4}
header{display:flex;flex-wrap:wrap;align-items:center;gap:12px 24px;padding:10px 16px;background:#fff;border-bottom:1px solid #ddd}
header h1{font-size:18px;margin:0}
header .tag{color:#666;max-width:560px}
main{display:grid;grid-template-columns:300px minmax(320px,1fr) minmax(340px,1.2fr);gap:12px;padding:12px 16px}
section{background:#fff;border:1px solid #ddd;border-radius:6px;padding:10px 12px;min-width:0}
section h2{font-size:15px;margin:0 0 6px}
.hint{color:#666;font-size:12px;margin:2px 0 8px}
label.ctl{display:block;margin:8px 0 0;font-weight:600}
label.ctl span.v{font-weight:normal;color:#444;margin-left:6px}
select,input[type=number],input[type=text]{font:inherit;padding:2px 4px;max-width:100%}
input[type=range]{width:100%}
button{font:inherit;padding:4px 10px;border:1px solid #888;border-radius:4px;background:#fafafa;cursor:pointer}
button.primary{background:#1f77b4;color:#fff;border-color:#1f77b4;font-weight:600;padding:6px 16px}
button:disabled{opacity:.5;cursor:default}
.row{display:flex;flex-wrap:wrap;gap:6px;align-items:center}
.card{display:grid;grid-template-columns:auto auto;gap:0 10px;font-size:12px}
.card b{font-weight:600}
.progress{width:220px;height:10px;background:#eee;border-radius:5px;overflow:hidden}
.progress div{height:100%;width:0;background:#1f77b4;transition:width .1s}
.status{font-size:12px;color:#444}
.error{background:#fdecea;border:1px solid #d62728;color:#a00;padding:6px 10px;border-radius:4px;margin:8px 16px 0;display:none;white-space:pre-wrap}
.drop{border:2px dashed #aaa;border-radius:6px;padding:6px 10px;font-size:12px;color:#555;text-align:center}
.drop.over{border-color:#1f77b4;background:#eef5fb}
canvas{image-rendering:pixelated;image-rendering:crisp-edges;border:1px solid #ccc;display:block}
.strip{display:flex;flex-wrap:wrap;gap:4px;margin-top:6px}
.strip canvas{cursor:pointer}
.strip canvas.focus{outline:2px solid #d62728}
.figure{display:inline-block;text-align:center;font-size:12px;margin:4px 6px 0 0;vertical-align:top}
.wide{grid-column:1/-1}
.two{display:grid;grid-template-columns:1fr 1fr;gap:12px}
.cf-view{overflow:auto}
.cf-view svg{max-width:100%;height:auto}
#cf-mask svg{max-height:420px;width:auto}
@media (max-width:1100px){main{grid-template-columns:1fr}.two{grid-template-columns:1fr}}
`;
