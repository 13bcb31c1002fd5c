// Node side of modules/provider.py, preloaded into the jsii kernel with NODE_OPTIONS=--require.
//
// The AWS provider's JavaScript entry point (lib/index.js) is 2,212 lines of
// `exports.<name> = require("./<dir>");`, so the first resource a stack creates loads every
// module (~270 MB of code, ~600 MB resident). The kernel only ever reads the namespaces it
// needs (closure.vpc.Vpc), so this hook serves that one file as getters that require each
// namespace on first access. Any line it does not recognise means the format changed: the
// original file is then loaded untouched.
"use strict";

const Module = require("module");
const fs = require("fs");
const path = require("path");

const PACKAGE = "@cdktf/provider-aws";
const EXPORT_LINE = /^exports\.([A-Za-z0-9_$]+) = require\("(\.\/[A-Za-z0-9._-]+)"\);$/;
const IGNORED_LINE = /^("use strict";|\/\*\*|\s*\*.*|\s*\*\/|\/\/.*|Object\.defineProperty\(exports, "__esModule", \{ value: true \}\);|exports\.[A-Za-z0-9_$. =]+ = void 0;|)$/;

function providerEntryPoint(file) {
  if (path.basename(file) !== "index.js" || path.basename(path.dirname(file)) !== "lib") return false;
  try {
    const pkg = JSON.parse(fs.readFileSync(path.join(path.dirname(file), "..", "package.json"), "utf8"));
    return pkg.name === PACKAGE;
  } catch {
    return false;
  }
}

function lazyExports(file) {
  const namespaces = [];
  for (const line of fs.readFileSync(file, "utf8").split("\n")) {
    const match = EXPORT_LINE.exec(line);
    if (match) namespaces.push([match[1], path.join(path.dirname(file), match[2])]);
    else if (!IGNORED_LINE.test(line)) return null;
  }
  const exports = { __esModule: true };
  for (const [name, target] of namespaces) {
    Object.defineProperty(exports, name, {
      enumerable: true,
      configurable: true,
      get() {
        const value = require(target);
        Object.defineProperty(exports, name, { value, enumerable: true });
        return value;
      },
    });
  }
  return exports;
}

const originalLoad = Module._load;
const served = new Map();
Module._load = function load(request, parent, isMain) {
  if (path.isAbsolute(request) && providerEntryPoint(request)) {
    if (!served.has(request)) served.set(request, lazyExports(request));
    const exports = served.get(request);
    if (exports) return exports;
  }
  return originalLoad.call(this, request, parent, isMain);
};
