// Self time of a V8 .cpuprofile grouped by package / source file, idle excluded: node bench/profile-by-package.mjs file.cpuprofile [n]
import { readFileSync } from 'node:fs';
const profile = JSON.parse(readFileSync(process.argv[2], 'utf8'));
const byId = new Map(profile.nodes.map((n) => [n.id, n]));
const self = new Map();
let total = 0;
profile.samples.forEach((id, i) => {
  const f = byId.get(id).callFrame; const dt = profile.timeDeltas[i] ?? 0;
  if (f.functionName === '(idle)') return;
  total += dt;
  let key = f.url.includes('node_modules/') ? f.url.replace(/.*node_modules\/((@[^/]+\/)?[^/]+).*/, '$1') : f.url.includes('/dist/') ? f.url.replace(/.*\/(apps|libs)\/([^/]+)\/dist\/(.*)/, '$1/$2/$3') : f.url.startsWith('node:') ? 'node:' + f.url.slice(5).split('/')[1] : (f.functionName || '(native)');
  self.set(key, (self.get(key) ?? 0) + dt);
});
console.log('busy ms', (total/1000).toFixed(0));
for (const [k, v] of [...self].sort((a, b) => b[1] - a[1]).slice(0, Number(process.argv[3] ?? 25))) console.log(((v / total) * 100).toFixed(1).padStart(5) + '%', k);
