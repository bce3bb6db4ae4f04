// Static check of the k6 scripts in scripts/k6 against the services, without k6 (k6 is
// AGPL: this project never fetches or builds it, and CI never runs a load test). Each script
// is parsed with acorn and its constants are folded where they are plain literals, which is
// enough to prove what would otherwise rot unnoticed until someone runs k6 against a stack:
//   - the file parses as an ES module, and every import resolves (relative files and the names
//     they export; k6 modules and the names used from them, from K6_MODULES below);
//   - each entry script exports `options`; each scenario's executor exists and its `exec`
//     names an exported function; each threshold's metric exists, its {tag:value} filters
//     use tags (and values) the script sets, and its expressions have k6's syntax;
//   - every HTTP request targets a route, with that method, of the Rust routers: the
//     api-gateway's for BASE_URL, the service-runtime admin router for the *ADMIN_URL bases;
//   - bodies sent to /admin/faults use only the keys of the Rust struct that PUT accepts, and
//     a fault's `route` is a route template of the service it is sent to;
//   - every __ENV.NAME is documented in a header comment, has a default or is set for the k6
//     service in docker-compose.yml, and is not K6_* (k6 reads those as its own options).
//
//   node check.mjs [--root REPO] [--deps DIR]     exit 0 = all ok, 1 = a check failed
//
// --root: the repository (default: two levels up); --deps: where `npm ci` put node_modules
// (scripts/k6/check.sh installs it in a cache outside the repository; default: here).
// selftest.mjs imports check() to run it on broken copies without a process per case.
import { existsSync, readFileSync, readdirSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join, posix } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';

const here = dirname(fileURLToPath(import.meta.url));

const SCRIPTS = 'scripts/k6';
const ENTRIES = ['smoke.js', 'load.js', 'chaos.js'];
const LIBRARIES = ['lib/shop.js'];
const GATEWAY_SRC = 'services/api-gateway/src';
const FAULTS_RS = 'crates/service-runtime/src/faults.rs';
const COMPOSE = 'docker-compose.yml';

// The k6 (v2.2) modules a script may import and the names it may use from them: named
// imports, or members of a default import (`http.get`). Add a name after reading k6's docs.
const K6_MODULES = {
  k6: ['check', 'fail', 'group', 'sleep', 'randomSeed'],
  'k6/http': ['get', 'post', 'put', 'patch', 'del', 'head', 'options', 'request', 'asyncRequest', 'batch',
    'expectedStatuses', 'setResponseCallback', 'cookieJar', 'CookieJar', 'file', 'url'],
  'k6/metrics': ['Counter', 'Gauge', 'Rate', 'Trend'],
  'k6/execution': ['scenario', 'instance', 'vu', 'test'],
};
// k6/http request functions -> [HTTP method (null: the first argument), index of the URL, of the body].
const HTTP_CALLS = {
  get: ['GET', 0, null], head: ['HEAD', 0, null], post: ['POST', 0, 1], put: ['PUT', 0, 1],
  patch: ['PATCH', 0, 1], del: ['DELETE', 0, 1], options: ['OPTIONS', 0, 1],
  request: [null, 1, 2], asyncRequest: [null, 1, 2],
};
// k6's built-in metrics (core and k6/http) and their types; scripts add theirs with
// `new Counter('name')` etc.
const BUILTIN_METRICS = {
  checks: 'Rate', data_received: 'Counter', data_sent: 'Counter', dropped_iterations: 'Counter',
  iteration_duration: 'Trend', iterations: 'Counter', vus: 'Gauge', vus_max: 'Gauge',
  http_reqs: 'Counter', http_req_failed: 'Rate', http_req_duration: 'Trend', http_req_blocked: 'Trend',
  http_req_connecting: 'Trend', http_req_tls_handshaking: 'Trend', http_req_sending: 'Trend',
  http_req_waiting: 'Trend', http_req_receiving: 'Trend',
};
// Threshold aggregations by metric type (k6's threshold grammar).
const AGGREGATIONS = {
  Counter: ['count', 'rate'], Gauge: ['value'], Rate: ['rate'], Trend: ['avg', 'min', 'max', 'med', 'p'],
};
const EXECUTORS = ['shared-iterations', 'per-vu-iterations', 'constant-vus', 'ramping-vus',
  'constant-arrival-rate', 'ramping-arrival-rate', 'externally-controlled'];
// k6's default `systemTags` (used when a script does not set the option).
const DEFAULT_SYSTEM_TAGS = ['proto', 'subproto', 'status', 'method', 'url', 'name', 'group', 'check',
  'error', 'error_code', 'tls_version', 'scenario', 'service', 'expected_response'];

const read = (rel) => readFileSync(join(ROOT, rel), 'utf8');
const rsFiles = (dir) => readdirSync(join(ROOT, dir)).filter((f) => f.endsWith('.rs')).map((f) => `${dir}/${f}`);

// ---------------------------------------------------------------- the Rust side
// `.route("/path", get(a).post(b))` in Rust sources, unit tests cut off (they build their own
// routers): [{method, path, handler}]. A route whose methods cannot be read is an error, so
// a new routing style fails loudly instead of hiding routes.
function rustRoutes(files) {
  const routes = [];
  for (const file of files) {
    const text = read(file).split(/^#\[cfg\(test\)\]/m)[0];
    const nested = /\.route\(\s*"([^"]+)"\s*,((?:[^()]|\((?:[^()]|\([^()]*\))*\))*)\)/g;
    for (const [, path, router] of text.matchAll(nested)) {
      const methods = [
        ...router.matchAll(/(?:^|\.|::)\s*(get|post|put|delete|patch|head|options)\s*\(\s*(\w*)/g),
      ];
      if (methods.length === 0) throw new Error(`${file}: cannot read the methods of route "${path}"`);
      for (const [, method, handler] of methods) routes.push({ method: method.toUpperCase(), path, handler });
    }
  }
  if (routes.length === 0) throw new Error(`no .route("...") in ${files.join(', ')}`);
  return routes;
}

// The JSON keys a handler accepts: the fields of the struct it takes as `Json<T>` (or
// `ApiJson<T>`), following #[serde(flatten)] fields into their own struct.
function bodyKeys(file, handler) {
  const text = read(file);
  const params = text.match(new RegExp(`fn ${handler}\\s*\\(([\\s\\S]*?)\\)\\s*(?:->|\\{|where)`))?.[1];
  const type = params?.match(/Json<(\w+)>/)?.[1];
  if (!type) throw new Error(`${file}: cannot find the Json<T> body of fn ${handler}`);
  const fields = (name) => {
    const m = text.match(
      new RegExp(`((?:#\\[[^\\]]*\\]\\s*)*)(?:pub(?:\\([^)]*\\))?\\s+)?struct ${name}\\s*\\{([^}]*)\\}`),
    );
    if (!m) throw new Error(`${file}: cannot find struct ${name}`);
    if (/rename_all/.test(m[1]))
      throw new Error(`${file}: struct ${name} uses rename_all, which this checker does not read`);
    const body = m[2].replace(/\/\/.*$/gm, '');
    return [
      ...body.matchAll(/((?:#\[[^\]]*\]\s*)*)(?:pub(?:\([^)]*\))?\s+)?(\w+)\s*:\s*((?:<[^>]*>|[^,<])+)/g),
    ].flatMap(([, attrs, field, ty]) =>
      /flatten/.test(attrs) ? fields(ty.trim()) : [attrs.match(/rename\s*=\s*"([^"]+)"/)?.[1] ?? field],
    );
  };
  return fields(type);
}

// Names in the k6 service's `environment:` in docker-compose.yml. Not a YAML parser: the file
// is block style with two-space indentation (scripts/check-compose.sh loads it for real), so
// the service is the lines under `  k6:` until the next line indented two spaces or less, and
// its variables are the `NAME: value` (or `- NAME=value`) lines under `    environment:`.
function composeK6Env() {
  const lines = read(COMPOSE).split('\n');
  const start = lines.findIndex((l) => /^ {2}k6:\s*$/.test(l));
  if (start < 0) throw new Error(`${COMPOSE}: no k6 service`);
  const names = new Set();
  let inEnv = false;
  for (const line of lines.slice(start + 1)) {
    if (/^\s*(#|$)/.test(line)) continue;
    const indent = line.match(/^ */)[0].length;
    if (indent <= 2) break;
    if (indent === 4) inEnv = /^ {4}environment:\s*$/.test(line);
    else if (inEnv && /^\s*(?:- )?[A-Za-z_]\w*\s*[:=]/.test(line)) names.add(line.match(/[A-Za-z_]\w*/)[0]);
  }
  return names;
}

// ---------------------------------------------------------------- the JavaScript side
// Calls visit(node, ancestors) on every node; ancestors run outermost first (Program).
function walk(node, visit, ancestors = []) {
  visit(node, ancestors);
  ancestors.push(node);
  for (const value of Object.values(node)) {
    for (const child of Array.isArray(value) ? value : [value]) {
      if (child && typeof child.type === 'string') walk(child, visit, ancestors);
    }
  }
  ancestors.pop();
}

const isFunction = (n) => /^(FunctionDeclaration|FunctionExpression|ArrowFunctionExpression)$/.test(n?.type);
const paramNames = (fn) => fn.params.map((p) => (p.type === 'AssignmentPattern' ? p.left : p).name);
const where = (mod, node) => `${mod.rel}:${node.loc.start.line}:${node.loc.start.column + 1}`;

function load(rel) {
  if (modules.has(rel)) return modules.get(rel);
  const mod = { rel, errors: [], imports: new Map(), exports: new Map(), requests: [], envReads: [],
    metrics: new Map(), tags: new Map(), calls: new Map() };
  modules.set(rel, mod);
  const text = read(rel);
  try {
    // By text: the self-test checks many copies that differ in one file. Nothing edits an AST.
    if (!parsed.has(text)) {
      const comments = [];
      const ast = parse(text, { ecmaVersion: 'latest', sourceType: 'module', locations: true, onComment: comments });
      parsed.set(text, { ast, comments });
    }
    ({ ast: mod.ast, comments: mod.comments } = parsed.get(text));
  } catch (e) {
    mod.errors.push(`${rel}:${e.loc.line}:${e.loc.column + 1}: ${e.message.replace(/ \(\d+:\d+\)$/, '')}`);
    return mod;
  }
  // The header: the comments before the first statement.
  const first = mod.ast.body[0]?.start ?? text.length;
  mod.header = mod.comments.filter((c) => c.end <= first).map((c) => c.value).join('\n');
  for (const stmt of mod.ast.body) {
    if (stmt.type === 'ImportDeclaration') {
      for (const s of stmt.specifiers) {
        const imported = { ImportSpecifier: s.imported?.name, ImportDefaultSpecifier: 'default' }[s.type] ?? '*';
        mod.imports.set(s.local.name, { source: stmt.source.value, imported, node: s });
      }
    } else if (stmt.type === 'ExportNamedDeclaration') {
      const decl = stmt.declaration;
      for (const d of decl?.declarations ?? []) mod.exports.set(d.id.name, { local: d.id.name });
      if (decl?.id) mod.exports.set(decl.id.name, { local: decl.id.name });
      for (const s of stmt.specifiers) mod.exports.set(s.exported.name, { local: s.local.name });
    } else if (stmt.type === 'ExportDefaultDeclaration') {
      const d = stmt.declaration;
      mod.exports.set('default', d.id ? { local: d.id.name } : { node: d });
    }
  }
  return mod;
}

// What `name` refers to at a point of mod (inside `ancestors`): a parameter or a const/let/
// function of an enclosing block, or an import. Plain lexical lookup, no shadowing rules.
function lookup(mod, name, ancestors) {
  for (let i = ancestors.length - 1; i >= 0; i--) {
    const scope = ancestors[i];
    if (isFunction(scope) && paramNames(scope).includes(name)) {
      return { kind: 'param', fn: scope, index: paramNames(scope).indexOf(name), mod };
    }
    for (const stmt of scope.type === 'Program' || scope.type === 'BlockStatement' ? scope.body : []) {
      const decl = stmt.type === 'ExportNamedDeclaration' ? stmt.declaration : stmt;
      if (decl?.type === 'FunctionDeclaration' && decl.id.name === name)
        return { kind: 'fn', node: decl, mod, name, top: i === 0 };
      for (const d of decl?.type === 'VariableDeclaration' ? decl.declarations : []) {
        if (d.id.name !== name) continue;
        const kind = isFunction(d.init) ? 'fn' : decl.kind === 'const' ? 'value' : 'var';
        return { kind, node: d.init, mod, name, top: i === 0, ancestors: ancestors.slice(0, i + 1) };
      }
    }
  }
  const imp = mod.imports.get(name);
  if (!imp) return null;
  if (imp.source.startsWith('.')) {
    const rel = posix.join(posix.dirname(mod.rel), imp.source);
    return existsSync(join(ROOT, rel)) && load(rel).ast ? lookupExport(load(rel), imp.imported) : null;
  }
  return { kind: 'k6', source: imp.source, imported: imp.imported };
}
function lookupExport(mod, name) {
  const exp = mod.exports.get(name);
  if (!exp) return null;
  if (exp.local) return lookup(mod, exp.local, [mod.ast]);
  return { kind: isFunction(exp.node) ? 'fn' : 'value', node: exp.node, mod, name, top: true, ancestors: [mod.ast] };
}

// A node's value where it is made of literals and consts (UNKNOWN otherwise); a template's
// unknown parts become HOLE, e.g. `med>=${SLOW_MS}` -> 'med>=${…}'.
const UNKNOWN = Symbol('unknown');
const HOLE = '${…}';
function evaluate(mod, node, ancestors) {
  switch (node?.type) {
    case 'Literal':
      return node.value;
    case 'TemplateLiteral':
      return node.quasis
        .map((q, i) => {
          const v = i < node.expressions.length ? evaluate(mod, node.expressions[i], ancestors) : '';
          return q.value.cooked + (typeof v === 'string' || typeof v === 'number' ? v : HOLE);
        })
        .join('');
    case 'Identifier': {
      const b = lookup(mod, node.name, ancestors);
      return b?.kind === 'value' ? evaluate(b.mod, b.node, b.ancestors) : UNKNOWN;
    }
    case 'MemberExpression': {
      const obj = evaluate(mod, node.object, ancestors);
      const key = node.computed ? evaluate(mod, node.property, ancestors) : node.property.name;
      return obj && typeof obj === 'object' && Object.hasOwn(obj, key) ? obj[key] : UNKNOWN;
    }
    case 'ObjectExpression': {
      const out = {};
      for (const p of node.properties) {
        const v = p.type === 'SpreadElement' ? evaluate(mod, p.argument, ancestors) : null;
        if (v && typeof v === 'object') Object.assign(out, v);
        else if (p.type === 'Property') out[propKey(mod, p, ancestors)] = evaluate(mod, p.value, ancestors);
      }
      return out;
    }
    case 'ArrayExpression':
      return node.elements.map((e) => evaluate(mod, e, ancestors));
    default:
      return UNKNOWN;
  }
}
const known = (v) => typeof v === 'string' && !v.includes(HOLE);
const propKey = (mod, p, ancestors) =>
  p.computed ? evaluate(mod, p.key, ancestors) : (p.key.name ?? String(p.key.value));
const property = (obj, name) =>
  obj.properties.find((p) => p.type === 'Property' && !p.computed && (p.key.name ?? p.key.value) === name);

// `http.get` (default import) or `get` (named import) from a k6 module -> {source, name}.
function k6Name(mod, callee, ancestors) {
  if (!mod.imports.has(callee.type === 'Identifier' ? callee.name : callee.object?.name)) return null;
  if (callee.type === 'Identifier') {
    const b = lookup(mod, callee.name, ancestors);
    return b?.kind === 'k6' ? { source: b.source, name: b.imported } : null;
  }
  if (callee.type === 'MemberExpression' && !callee.computed && callee.object.type === 'Identifier') {
    const b = lookup(mod, callee.object.name, ancestors);
    if (b?.kind === 'k6' && (b.imported === 'default' || b.imported === '*'))
      return { source: b.source, name: callee.property.name };
  }
  return null;
}

// The module-level function (or '<module>') a node is in, for "which requests can a script reach".
function topName(ancestors) {
  for (const a of ancestors.slice(1)) {
    if (a.type === 'FunctionDeclaration') return a.id?.name ?? 'default';
    if (a.type === 'VariableDeclarator') return a.id.name;
    if (!/^Export|^VariableDeclaration$/.test(a.type)) break;
  }
  return '<module>';
}

// Tag keys (and their values, null = not statically known) an object sets, at a place
// where it becomes tags: `tags: {...}`, or an argument for a parameter named `tags`.
function addTags(mod, node, ancestors) {
  if (node?.type === 'Identifier') {
    const b = lookup(mod, node.name, ancestors);
    if (b?.kind === 'value') addTags(b.mod, b.node, b.ancestors);
    return; // a parameter: its callers' arguments are collected where they are
  }
  if (node?.type !== 'ObjectExpression') return;
  for (const p of node.properties) {
    if (p.type === 'SpreadElement') {
      addTags(mod, p.argument, ancestors);
      continue;
    }
    const key = propKey(mod, p, ancestors);
    const values = tagValues(mod, p.value, ancestors);
    const seen = mod.tags.get(key);
    mod.tags.set(key, values && seen !== null ? new Set([...(seen ?? []), ...values]) : null);
  }
}
// A tag value: a constant, or a call of a local function that returns only constants (phaseAt).
function tagValues(mod, node, ancestors) {
  const v = evaluate(mod, node, ancestors);
  if (known(v)) return [v];
  const b =
    node.type === 'CallExpression' &&
    node.callee.type === 'Identifier' &&
    lookup(mod, node.callee.name, ancestors);
  if (b?.kind !== 'fn') return null;
  if (b.node.body.type !== 'BlockStatement') return tagValues(b.mod, b.node.body, [b.mod.ast, b.node]); // () => 'x'
  const values = [];
  walk(b.node.body, (n, anc) => {
    const own = [b.node, ...anc].findLast(isFunction) === b.node; // not a nested function's return
    if (n.type === 'ReturnStatement' && own)
      values.push(evaluate(b.mod, n.argument, [b.mod.ast, b.node, ...anc]));
  });
  return values.length > 0 && values.every(known) ? values : null;
}

// One pass over a module: imports, requests, metrics, tags, __ENV reads, calls.
function scan(mod) {
  const importError = (imp, text) => {
    mod.errors.push(`${where(mod, imp.node)}: ${text}`);
    mod.importsBroken = true; // the other checks would only repeat it
  };
  const bad = new Set(); // one error per missing or unparsable file
  for (const imp of mod.imports.values()) {
    if (imp.source.startsWith('.')) {
      const rel = posix.join(posix.dirname(mod.rel), imp.source);
      if (bad.has(rel)) continue;
      if (!existsSync(join(ROOT, rel))) {
        bad.add(rel);
        importError(imp, `import ${imp.source}: no such file`);
        continue;
      }
      const target = load(rel);
      if (!target.ast) {
        bad.add(rel);
        importError(imp, `import ${imp.source}: that file does not parse`);
      } else if (imp.imported !== '*' && !target.exports.has(imp.imported))
        importError(imp, `${imp.source} does not export ${imp.imported}`);
    } else if (!K6_MODULES[imp.source]) {
      importError(imp, `import '${imp.source}': not a relative file nor a k6 module of K6_MODULES`);
    } else if (!['default', '*'].includes(imp.imported) && !K6_MODULES[imp.source].includes(imp.imported)) {
      importError(imp, `'${imp.source}' has no export ${imp.imported} (K6_MODULES)`);
    }
  }
  walk(mod.ast, (node, anc) => {
    if (!/^(MemberExpression|CallExpression|NewExpression|Property)$/.test(node.type)) return;
    const ancestors = [...anc]; // walk() reuses its array
    const at = where(mod, node);
    // Members of a default k6 import: http.get, exec.scenario, ...
    if (node.type === 'MemberExpression' && !node.computed && node.object.type === 'Identifier') {
      const k6 = k6Name(mod, node, ancestors);
      if (k6 && !K6_MODULES[k6.source]?.includes(k6.name))
        mod.errors.push(`${at}: '${k6.source}' has no ${k6.name} (K6_MODULES)`);
    }
    if (node.type === 'CallExpression') {
      const k6 = k6Name(mod, node.callee, ancestors);
      if (k6?.source === 'k6/http' && HTTP_CALLS[k6.name]) request(mod, node, ancestors, k6.name);
      else if (k6?.source === 'k6/http' && k6.name === 'batch')
        mod.errors.push(`${at}: http.batch is not checked: use single requests`);
      // Arguments for parameters named `tags` (k6's check(value, sets, tags) included).
      const b = node.callee.type === 'Identifier' ? lookup(mod, node.callee.name, ancestors) : null;
      const isCheck = k6?.source === 'k6' && k6.name === 'check';
      const params = b?.kind === 'fn' ? paramNames(b.node) : isCheck ? ['value', 'sets', 'tags'] : [];
      node.arguments.forEach((arg, i) => params[i] === 'tags' && addTags(mod, arg, ancestors));
      if (b?.kind === 'fn') {
        callSites.set(b.node, [...(callSites.get(b.node) ?? []), { mod, node, ancestors }]);
        const top = topName(ancestors);
        if (b.top) mod.calls.set(top, [...(mod.calls.get(top) ?? []), b]);
      }
    }
    if (node.type === 'Property' && !node.computed && (node.key.name ?? node.key.value) === 'tags')
      addTags(mod, node.value, ancestors);
    if (node.type === 'NewExpression' && node.callee.type === 'Identifier') {
      const k6 = k6Name(mod, node.callee, ancestors);
      if (k6?.source === 'k6/metrics') {
        const name = evaluate(mod, node.arguments[0], ancestors);
        if (known(name)) mod.metrics.set(name, k6.name);
        else mod.errors.push(`${at}: a metric name must be a constant string`);
      }
    }
    if (node.type === 'MemberExpression' && node.object.type === 'Identifier' && node.object.name === '__ENV') {
      const name = node.computed ? evaluate(mod, node.property, ancestors) : node.property.name;
      if (!known(name)) mod.errors.push(`${at}: __ENV[...] with a computed name cannot be checked`);
      else mod.envReads.push({ name, at, defaulted: defaulted(mod, node, ancestors) });
    }
  });
}

// An __ENV read has a default when it is `__ENV.X || d` (or ??), the test of
// `__ENV.X === undefined ? d : __ENV.X`, or passed to a helper whose next parameter is its
// fallback (parseDuration(text, fallbackSeconds), positiveInt(text, fallback, name)).
function defaulted(mod, node, ancestors) {
  const [parent, grand] = [ancestors.at(-1), ancestors.at(-2)];
  if (parent.type === 'LogicalExpression' && parent.left === node && ['||', '??'].includes(parent.operator))
    return true;
  const compared = parent.type === 'BinaryExpression' && /^[!=]==?$/.test(parent.operator);
  if (compared && grand?.type === 'ConditionalExpression' && grand.test === parent) return true;
  if (parent.type === 'CallExpression' && parent.callee.type === 'Identifier') {
    const i = parent.arguments.indexOf(node);
    const b = lookup(mod, parent.callee.name, ancestors);
    const next = b?.kind === 'fn' ? paramNames(b.node)[i + 1] : undefined;
    return i >= 0 && /^(fallback|default)/i.test(next ?? '') && parent.arguments.length > i + 1;
  }
  return false;
}

// A request: `${BASE}/path/${id}` -> the router (by the base's name) and the route it hits.
function request(mod, node, ancestors, fn) {
  const at = where(mod, node);
  const [fixedMethod, urlIndex, bodyIndex] = HTTP_CALLS[fn];
  const method = fixedMethod ?? evaluate(mod, node.arguments[0], ancestors);
  if (!known(method)) {
    mod.errors.push(`${at}: http.${fn}: the method must be a constant`);
    return;
  }
  const url = node.arguments[urlIndex];
  const readable = url?.type === 'TemplateLiteral' && url.quasis[0].value.cooked === '';
  if (!readable || url.expressions[0]?.type !== 'Identifier') {
    mod.errors.push(`${at}: cannot read this URL: write it as \`\${BASE}/path\` (BASE_URL or an *ADMIN_URL)`);
    return;
  }
  const base = url.expressions[0].name;
  // The rest of the URL; an unknown interpolation is one path segment, `{}`.
  const rest = url.quasis.slice(1).map((q, i) => {
    const e = url.expressions[i + 1];
    const v = e && evaluate(mod, e, ancestors);
    return q.value.cooked + (!e ? '' : known(v) ? v : '{}');
  });
  const path = rest.join('').split('?')[0];
  const router = base === 'BASE_URL' ? 'gateway' : /admin/i.test(base) ? 'admin' : null;
  if (!router) {
    mod.errors.push(`${at}: unknown base \${${base}}: expected BASE_URL (gateway) or an *ADMIN_URL (admin)`);
    return;
  }
  const routes = router === 'gateway' ? RUST.gateway : RUST.admin;
  const routerName = router === 'gateway' ? GATEWAY_SRC : FAULTS_RS;
  const matching = routes.filter((r) => pathMatches(r.path, path));
  const route = matching.find((r) => r.method === method.toUpperCase());
  if (matching.length === 0) mod.errors.push(`${at}: no route ${method} ${path} in ${routerName}`);
  else if (!route) {
    const has = matching.map((r) => r.method).join(', ');
    mod.errors.push(`${at}: ${matching[0].path} in ${routerName} has no ${method} (only ${has})`);
  }
  const body = bodyIndex === null ? null : node.arguments[bodyIndex];
  mod.requests.push({ at, method: method.toUpperCase(), base, path, route, body, ancestors, top: topName(ancestors) });
}
// `/api/orders/{id}` (or axum's older `:id`) matches `/api/orders/{}` and `/api/orders/42`.
function pathMatches(template, path) {
  const t = template.split('/');
  const p = path.split('/');
  return t.length === p.length && t.every((seg, i) => seg === p[i] || (/^(\{\w+\}|:\w+)$/.test(seg) && p[i] !== ''));
}

// Bodies PUT to /admin/faults: `JSON.stringify({...})`, directly or through a parameter of
// the function making the request (setFault(url, fault)): then every caller's argument.
function checkFaultBodies(mod) {
  for (const req of mod.requests.filter((r) => r.route?.path === '/admin/faults' && r.method === 'PUT')) {
    const b = req.body;
    if (b.type !== 'CallExpression' || b.callee.type !== 'MemberExpression' || b.callee.object.name !== 'JSON') {
      mod.errors.push(`${req.at}: send a fault as JSON.stringify({...}) so its keys can be checked`);
      continue;
    }
    const arg = b.arguments[0];
    const param = arg.type === 'Identifier' ? lookup(mod, arg.name, req.ancestors) : null;
    const bodies = [];
    if (param?.kind === 'param') {
      const baseParam = paramNames(param.fn).indexOf(req.base);
      for (const site of callSites.get(param.fn) ?? []) {
        const baseArg = site.node.arguments[baseParam];
        const base = baseArg?.type === 'Identifier' ? baseArg.name : req.base;
        bodies.push({ ...site, obj: site.node.arguments[param.index], base });
      }
    } else bodies.push({ mod, node: b, ancestors: req.ancestors, obj: arg, base: req.base });
    for (const { mod: m, ancestors, obj, base } of bodies) checkFault(m, obj, ancestors, base);
  }
}
function checkFault(mod, node, ancestors, base) {
  let obj = node;
  if (node?.type === 'Identifier') {
    const b = lookup(mod, node.name, ancestors);
    if (b?.kind === 'value') ({ node: obj, ancestors } = b);
  }
  if (obj?.type !== 'ObjectExpression') {
    mod.errors.push(`${where(mod, node)}: a fault body must be an object literal (or a const one)`);
    return;
  }
  for (const p of obj.properties) {
    const key = p.type === 'Property' ? propKey(mod, p, ancestors) : '...';
    const keys = RUST.faultKeys.join(', ');
    if (!RUST.faultKeys.includes(key))
      mod.errors.push(`${where(mod, p)}: fault key "${key}" is not one of ${FAULTS_RS}'s ${keys}`);
  }
  // The fault middleware keys faults by "METHOD /route/template" (axum's MatchedPath), so
  // `route` must be exactly a route of the service behind SERVICE_<X>_ADMIN_URL.
  const route = property(obj, 'route');
  const service = base.match(/^SERVICE_([A-Z0-9]+)_ADMIN_URL$/)?.[1].toLowerCase();
  const dir = `services/service-${service}/src`;
  if (route && service && existsSync(join(ROOT, dir))) {
    const value = evaluate(mod, route.value, ancestors);
    const ok = known(value) && rustRoutes(rsFiles(dir)).some((r) => `${r.method} ${r.path}` === value);
    const shown = JSON.stringify(known(value) ? value : '?');
    if (!ok) mod.errors.push(`${where(mod, route)}: fault route ${shown} is not a route of ${dir}`);
  }
}

// __ENV reads: documented, given a value, not K6_*.
function checkEnv(mod) {
  const headers = [mod, ...localImports(mod)].map((m) => m.header ?? '').join('\n');
  for (const name of new Set(mod.envReads.map((r) => r.name))) {
    const reads = mod.envReads.filter((r) => r.name === name);
    const at = reads[0].at;
    if (name.startsWith('K6_'))
      mod.errors.push(`${at}: __ENV.${name}: k6 reads K6_* as its own options (see lib/shop.js); pick another name`);
    if (!new RegExp(`\\b${name}\\b`).test(headers))
      mod.errors.push(`${at}: __ENV.${name} is not documented in the header comment of ${mod.rel} or of its imports`);
    if (!reads.some((r) => r.defaulted) && !RUST.composeEnv.has(name))
      mod.errors.push(`${at}: __ENV.${name} has no default and ${COMPOSE} does not set it for k6`);
  }
}
function localImports(mod, seen = new Set()) {
  for (const imp of mod.imports.values()) {
    const target = imp.source.startsWith('.') && modules.get(posix.join(posix.dirname(mod.rel), imp.source));
    if (target?.ast && !seen.has(target)) {
      seen.add(target);
      localImports(target, seen);
    }
  }
  return [...seen];
}

// Entry scripts: options, scenarios, thresholds.
function checkOptions(mod) {
  const summary = [];
  const b = lookupExport(mod, 'options');
  const options = b?.kind === 'value' ? b.node : null;
  if (options?.type !== 'ObjectExpression') {
    mod.errors.push(`${mod.rel}: must export const options = {...}`);
    return summary;
  }
  const anc = [mod.ast];
  const literal = (name) => {
    const p = property(options, name);
    const ok = p?.value.type === 'ObjectExpression' && p.value.properties.every((q) => q.type === 'Property');
    if (p && !ok)
      mod.errors.push(`${where(mod, p)}: options.${name} must be an object literal, without spreads`);
    return ok ? p.value.properties : null;
  };
  // Without `scenarios`, k6 runs the default function.
  const scenarios = literal('scenarios') ?? [];
  const names = scenarios.map((s) => propKey(mod, s, anc));
  if (scenarios.length === 0 && lookupExport(mod, 'default')?.kind !== 'fn')
    mod.errors.push(`${mod.rel}: no scenarios and no default function`);
  scenarios.forEach((s, i) => {
    const at = where(mod, s);
    if (s.value.type !== 'ObjectExpression') {
      mod.errors.push(`${at}: scenario ${names[i]} must be an object literal`);
      return;
    }
    const v = evaluate(mod, s.value, anc);
    const exec = property(s.value, 'exec') ? v.exec : 'default';
    if (!EXECUTORS.includes(v.executor))
      mod.errors.push(`${at}: scenario ${names[i]}: unknown executor ${JSON.stringify(v.executor)}`);
    if (!known(exec)) mod.errors.push(`${at}: scenario ${names[i]}: exec must be a constant`);
    else if (lookupExport(mod, exec)?.kind !== 'fn')
      mod.errors.push(`${at}: scenario ${names[i]}: exec "${exec}" is not an exported function`);
  });
  summary.push(`scenarios ${names.join(', ') || '(default)'}`);

  const scope = [mod, ...localImports(mod)];
  const metrics = { ...BUILTIN_METRICS };
  const tags = new Map();
  for (const m of scope) {
    for (const [k, v] of m.metrics) metrics[k] = v;
    for (const [k, v] of m.tags)
      tags.set(k, v && tags.get(k) !== null ? new Set([...(tags.get(k) ?? []), ...v]) : null);
  }
  const systemTagsProp = property(options, 'systemTags');
  const systemTags = systemTagsProp ? evaluate(mod, systemTagsProp.value, anc) : DEFAULT_SYSTEM_TAGS;
  if (!Array.isArray(systemTags) || !systemTags.every(known))
    mod.errors.push(`${mod.rel}: options.systemTags must be a constant list`);
  // The values a tag takes (undefined or null: any); k6 names a lone scenario "default".
  const values = (key) => (key === 'scenario' ? new Set(names.length ? names : ['default']) : tags.get(key));

  const thresholds = literal('thresholds') ?? [];
  for (const t of thresholds) {
    const at = where(mod, t);
    const key = propKey(mod, t, anc);
    if (!known(key)) {
      mod.errors.push(`${at}: threshold key is not a constant`);
      continue;
    }
    // As k6's ParseMetricName: metric{k:v,...}, the first '{' to the last '}'.
    const brace = key.indexOf('{');
    const metric = brace < 0 ? key : key.slice(0, brace);
    if (!metrics[metric]) {
      mod.errors.push(`${at}: threshold on unknown metric "${metric}"`);
      continue;
    }
    if (brace >= 0) {
      if (!key.endsWith('}')) mod.errors.push(`${at}: "${key}" must end with '}'`);
      for (const kv of key.slice(brace + 1, -1).split(',')) {
        const [k, v] = kv.split(/:(.*)/s).map((s) => s.trim().replace(/^["']+|["']+$/g, ''));
        if (!v) {
          mod.errors.push(`${at}: "${kv}" in "${key}" is not tag:value`);
          continue;
        }
        if (!tags.has(k) && !(Array.isArray(systemTags) && systemTags.includes(k)))
          mod.errors.push(`${at}: "${key}" filters on tag "${k}", which the script never sets`);
        else if (values(k) && !values(k).has(v)) {
          const set = [...values(k)].join(', ');
          mod.errors.push(`${at}: "${key}": the script never sets ${k}=${JSON.stringify(v)} (it sets ${set})`);
        }
      }
    }
    const list = t.value.type === 'ArrayExpression' ? t.value.elements : null;
    if (!list) {
      mod.errors.push(`${at}: thresholds of ${key} must be a list`);
      continue;
    }
    for (const e of list) {
      const expr = evaluate(mod, e.type === 'ObjectExpression' ? property(e, 'threshold')?.value : e, anc);
      checkExpression(mod, where(mod, e), expr, metrics[metric]);
    }
  }
  summary.push(`${thresholds.length} thresholds`);
  return summary;
}
// k6's grammar: aggregation operator number, e.g. `p(95)<300`; a run-time interpolation
// (`med>=${SLOW_MS}`) stands for the number.
function checkExpression(mod, at, expr, type) {
  const aggregation = String.raw`count|rate|value|avg|min|max|med|p\(\d+(?:\.\d+)?\)`;
  const number = String.raw`\d+(?:\.\d+)?|\$\{…\}`; // HOLE
  const syntax = new RegExp(String.raw`^\s*(${aggregation})\s*(>=|<=|===|==|!=|>|<)\s*(?:${number})\s*$`);
  const m = typeof expr === 'string' && expr.match(syntax);
  const shown = JSON.stringify(typeof expr === 'string' ? expr : '?');
  if (!m) mod.errors.push(`${at}: threshold ${shown} is not "aggregation operator number"`);
  else if (!AGGREGATIONS[type].includes(m[1].replace(/\(.*/, '')))
    mod.errors.push(`${at}: ${m[1]} is not an aggregation of a ${type} metric (${AGGREGATIONS[type].join(', ')})`);
}

// Requests an entry can make: its own and those of the library functions it calls, transitively.
function reachable(entry) {
  const out = [...entry.requests];
  const seen = new Set();
  const visit = (m, name) => {
    if (seen.has(`${m.rel}#${name}`)) return;
    seen.add(`${m.rel}#${name}`);
    out.push(...m.requests.filter((r) => r.top === name));
    for (const c of m.calls.get(name) ?? []) visit(c.mod, c.name);
  };
  for (const calls of entry.calls.values()) for (const c of calls) if (c.mod !== entry) visit(c.mod, c.name);
  return out;
}
function routesSummary(requests) {
  const byPath = new Map();
  for (const r of requests) {
    const path = r.route?.path ?? r.path;
    byPath.set(path, new Set([...(byPath.get(path) ?? []), r.method]));
  }
  const order = ['GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE', 'OPTIONS'];
  return [...byPath].map(([path, methods]) => `${order.filter((m) => methods.has(m)).join('|')} ${path}`).join(', ');
}

// ---------------------------------------------------------------- main
// The state of one run (check() runs one at a time).
let ROOT, RUST, parse;
const parsed = new Map(); // source text -> {ast, comments}
let modules; // path -> module
let callSites; // function node -> [{mod, node, ancestors}]

// Checks the scripts under root; returns the report's lines and whether all passed.
export function check({ root, deps }) {
  ROOT = root;
  modules = new Map();
  callSites = new Map();
  parse ??= createRequire(join(deps, 'package.json'))('acorn').parse;
  try {
    const admin = rustRoutes([FAULTS_RS]);
    const put = admin.find((r) => r.path === '/admin/faults' && r.method === 'PUT');
    RUST = {
      gateway: rustRoutes(rsFiles(GATEWAY_SRC)),
      admin,
      faultKeys: put ? bodyKeys(FAULTS_RS, put.handler) : [],
      composeEnv: composeK6Env(),
    };
  } catch (e) {
    return { ok: false, lines: [`FAIL  cannot read the services: ${e.message}`] };
  }

  for (const f of [...ENTRIES, ...LIBRARIES]) load(`${SCRIPTS}/${f}`);
  for (const mod of modules.values()) if (mod.ast) scan(mod); // also visits modules loaded meanwhile
  const summaries = new Map();
  for (const mod of modules.values()) {
    if (!mod.ast || mod.importsBroken) continue;
    checkFaultBodies(mod); // errors go to the module that builds the body
    checkEnv(mod);
    const entry = ENTRIES.some((e) => mod.rel === `${SCRIPTS}/${e}`);
    const summary = entry ? checkOptions(mod) : [];
    summary.push(`routes ${routesSummary(entry ? reachable(mod) : mod.requests) || 'none'}`);
    const env = [...new Set(mod.envReads.map((r) => r.name))];
    if (env.length) summary.push(`env ${env.join(', ')}`);
    summaries.set(mod, summary);
  }
  const lines = [];
  for (const mod of modules.values()) {
    if (mod.errors.length === 0) lines.push(`ok    ${mod.rel}: ${summaries.get(mod).join(' | ')}`);
    else lines.push(`FAIL  ${mod.rel}`, ...mod.errors.map((e) => `      ${e}`));
  }
  return { ok: [...modules.values()].every((m) => m.errors.length === 0), lines };
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const { values: args } = parseArgs({
    options: { root: { type: 'string', default: join(here, '../..') }, deps: { type: 'string', default: here } },
  });
  const { ok, lines } = check(args);
  console.log(lines.join('\n'));
  process.exit(ok ? 0 : 1);
}
