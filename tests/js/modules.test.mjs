// The console's module graph: every import resolves, main.js reaches every module, there are
// no cycles, the pure modules stay free of the DOM (so Node can import them), and nothing puts
// markup into the page.
import assert from 'node:assert/strict';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { test } from 'node:test';
import { fileURLToPath, pathToFileURL } from 'node:url';

const STATIC = join(dirname(fileURLToPath(import.meta.url)), '..', '..', 'static');
const JS = join(STATIC, 'js');
const PURE = ['chart-scale.js', 'format.js', 'glob.js', 'query.js', 'timeline-layout.js', 'vocabulary.js'];

const modules = readdirSync(JS).filter((name) => name.endsWith('.js')).sort();
const source = Object.fromEntries(modules.map((name) => [name, readFileSync(join(JS, name), 'utf8')]));
const withoutComments = (text) => text.replace(/\/\*[\s\S]*?\*\//g, '').replace(/^\s*\/\/.*$/gm, '').replace(/\s\/\/.*$/gm, '');
const imports = Object.fromEntries(modules.map((name) => [
  name, [...source[name].matchAll(/(?:from|import)\s+'([^']+)'/g)].map((m) => m[1]),
]));

test('every import is a relative path to a module that exists', () => {
  for (const [name, specifiers] of Object.entries(imports)) {
    for (const spec of specifiers) {
      assert.match(spec, /^\.\/[a-z-]+\.js$/, `${name} imports ${spec}`);
      assert.ok(existsSync(join(JS, spec)), `${name} imports missing ${spec}`);
    }
  }
});

test('main.js reaches every module and the graph has no cycle', () => {
  const reached = new Set();
  const visit = (name, path) => {
    assert.ok(!path.includes(name), `import cycle: ${[...path, name].join(' -> ')}`);
    if (reached.has(name)) return;
    for (const spec of imports[name]) visit(spec.slice(2), [...path, name]);
    reached.add(name);
  };
  visit('main.js', []);
  assert.deepEqual([...reached].sort(), modules);
});

test('pure modules import only pure modules and never touch the page', async () => {
  for (const name of PURE) {
    for (const spec of imports[name]) assert.ok(PURE.includes(spec.slice(2)), `${name} imports ${spec}`);
    // A global, not a property (`f.window`), an object key (`window: '24h'`) or a string.
    const code = withoutComments(source[name]).replace(/'(?:[^'\\\n]|\\.)*'/g, "''");
    const dom = code.match(/(?<![.\w])(document|window|navigator|localStorage|sessionStorage|location|history|fetch|HTMLElement|Element|Node)\b(?!\s*:)/);
    assert.equal(dom, null, `${name} uses ${dom && dom[0]}`);
    await import(pathToFileURL(join(JS, name)).href);
  }
});

test('no module puts markup into the page', () => {
  for (const name of modules) {
    const code = withoutComments(source[name]);
    assert.doesNotMatch(code, /innerHTML|outerHTML|insertAdjacentHTML|document\.write|createContextualFragment|DOMParser|srcdoc/, name);
    assert.doesNotMatch(code, /\beval\s*\(|new Function\b/, name);
  }
});

test('the page loads main.js as its one module script', () => {
  const html = readFileSync(join(STATIC, 'index.html'), 'utf8');
  assert.deepEqual(html.match(/<script\b[^>]*>/g), ['<script type="module" src="/static/js/main.js">']);
});
