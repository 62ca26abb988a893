// hoist's stand-in for npm's install lifecycle, run by the image's node
// inside hoist's sandbox, in npm's order: every package's preinstall
// script, then every install script, then every postinstall script, the
// packages in the order given (npm's: shallowest first, then by path).
// A package that has a binding.gyp and neither a preinstall nor an
// install script gets npm's default install script, `node-gyp rebuild`.
// Scripts run with `sh -c` in the package's folder, with the
// node_modules/.bin folders from the package up to the project first on
// PATH and npm's npm_* variables, as npm runs them; one at a time, so the
// output reads in order and the result does not depend on timing.
'use strict';
const { spawnSync } = require('child_process');
const fs = require('fs');
const path = require('path');

const [project, ...packages] = process.argv.slice(1);
const found = packages.map((rel) => {
  const dir = path.join(project, rel);
  const manifest = path.join(dir, 'package.json');
  const pkg = JSON.parse(fs.readFileSync(manifest, 'utf8'));
  const scripts = Object.assign({}, pkg.scripts);
  if (!scripts.install && !scripts.preinstall && fs.existsSync(path.join(dir, 'binding.gyp'))) {
    scripts.install = 'node-gyp rebuild';
  }
  const bins = [];
  for (let d = dir; ; d = path.dirname(d)) {
    bins.push(path.join(d, 'node_modules', '.bin'));
    if (d === project || d === path.dirname(d)) break;
  }
  return { rel, dir, manifest, pkg, scripts, bins };
});
for (const event of ['preinstall', 'install', 'postinstall']) {
  for (const { rel, dir, manifest, pkg, scripts, bins } of found) {
    const script = scripts[event];
    if (!script) continue;
    const env = Object.assign({}, process.env, {
      PATH: bins.concat([process.env.PATH || '']).join(':'),
      INIT_CWD: project,
      npm_lifecycle_event: event,
      npm_lifecycle_script: script,
      npm_package_name: pkg.name || '',
      npm_package_version: pkg.version || '',
      npm_package_json: manifest,
      npm_node_execpath: process.execPath,
      npm_config_user_agent: 'hoist',
    });
    console.log(`\n> ${pkg.name}@${pkg.version} ${event} ${dir}\n> ${script}\n`);
    const r = spawnSync('sh', ['-c', script], { cwd: dir, env, stdio: 'inherit' });
    if (r.status !== 0) {
      const how = r.error ? r.error.message : r.signal ? `signal ${r.signal}` : `status ${r.status}`;
      console.error(`hoist: ${rel}: the ${event} script \`${script}\` failed (${how})`);
      process.exit(1);
    }
  }
}
