// Writes generated/<dashboard>.ts for every monitoring/grafana/dashboards/*.json:
// the JSON text itself as an object literal typed CheckedDashboard, so tsc checks
// it with literal types and excess-property checks (an `import x from "*.json"`
// would widen every string and skip both). Line N of the .ts is line N of the JSON.
import { mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
const srcDir = process.env.DASHBOARD_DIR ?? join(here, '..', 'grafana', 'dashboards');
const outDir = join(here, 'generated');
rmSync(outDir, { recursive: true, force: true });
mkdirSync(outDir, { recursive: true });

const files = readdirSync(srcDir).filter((f) => f.endsWith('.json')).sort();
if (files.length === 0) {
  console.error(`no dashboards in ${srcDir}`);
  process.exit(1);
}
for (const f of files) {
  const text = readFileSync(join(srcDir, f), 'utf8');
  JSON.parse(text); // a syntax error is reported here with the file name
  const name = basename(f, '.json');
  const ts =
    "import type { CheckedDashboard } from '../dashboard-types'; export const dashboard: CheckedDashboard = " +
    text.trimEnd() +
    ';\n';
  writeFileSync(join(outDir, `${name}.ts`), ts);
  console.log(`generated/${name}.ts <- ${f}`);
}
