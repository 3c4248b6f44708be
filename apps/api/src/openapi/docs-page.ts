/** A self-contained API reference: it renders /openapi.json and can send GET requests with a key. */
export const DOCS_PAGE = `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Tokenwire API</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<style>
body{font:15px/1.5 system-ui,sans-serif;margin:0 auto;max-width:980px;padding:24px;color:#1d2330}
h1{margin:0 0 4px}.route{border:1px solid #d6dae3;border-radius:8px;margin:10px 0;padding:10px 14px}
.m{display:inline-block;min-width:64px;font-weight:700;text-transform:uppercase}.get{color:#0a7d46}.post{color:#1f5fbf}.delete{color:#b3261e}
code,pre{font:13px ui-monospace,monospace}pre{background:#f5f6f8;padding:8px;border-radius:6px;overflow:auto;max-height:320px}
summary{cursor:pointer}input{font:inherit;padding:4px 8px;width:340px}button{font:inherit;padding:3px 10px}
</style></head><body>
<h1>Tokenwire API</h1><p id="info"></p>
<p><label>API key <input id="key" placeholder="tw_… (when auth is enabled)"></label></p>
<div id="routes">Loading /openapi.json…</div>
<script>
const esc = (s) => String(s).replace(/[&<>]/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;' })[c]);
fetch('/openapi.json').then((r) => r.json()).then((doc) => {
  document.getElementById('info').textContent = doc.info.description;
  const out = [];
  for (const [path, methods] of Object.entries(doc.paths)) for (const [method, op] of Object.entries(methods)) {
    const body = op.requestBody ? '<details><summary>Request body</summary><pre>' + esc(JSON.stringify(op.requestBody.content['application/json'].schema, null, 2)) + '</pre></details>' : '';
    const responses = Object.entries(op.responses).map(([status, r]) => '<details><summary>' + status + ' — ' + esc(r.description) + '</summary><pre>' + esc(JSON.stringify(r.content, null, 2)) + '</pre></details>').join('');
    const tryIt = method === 'get' && !path.includes('{') ? '<button data-path="' + path + '">Try</button><pre hidden></pre>' : '';
    out.push('<div class="route"><span class="m ' + method + '">' + method + '</span> <code>' + esc(path) + '</code> — ' + esc(op.summary) + body + responses + tryIt + '</div>');
  }
  const routes = document.getElementById('routes');
  routes.innerHTML = out.join('');
  routes.addEventListener('click', async (e) => {
    const path = e.target.dataset && e.target.dataset.path;
    if (!path) return;
    const key = document.getElementById('key').value;
    const res = await fetch(path, { headers: key ? { authorization: 'Bearer ' + key } : {} });
    const pre = e.target.nextElementSibling;
    pre.hidden = false;
    pre.textContent = res.status + '\\n' + JSON.stringify(await res.json(), null, 2);
  });
});
</script></body></html>`;
