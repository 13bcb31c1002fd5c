// Node side of modules/engine/provider.py, preloaded into the jsii kernel with NODE_OPTIONS=--require.
//
// The AWS provider's JavaScript entry point (lib/index.js) is ~2,500 lines of
// `exports.<name> = __importStar(require("./<dir>/index"));`, so the first resource a stack
// creates loads every module (~900 MB resident). The kernel only ever reads the namespaces it
// needs (closure.vpc.Vpc), so this hook serves that one file as getters that require each
// namespace on first access. The file's prelude may only define TypeScript's module helpers
// (__createBinding, __setModuleDefault, __importStar), which the getters reproduce; any line
// it does not recognise means the format changed: the original file is then loaded untouched.
"use strict";

const Module = require("module");
const fs = require("fs");
const path = require("path");

const PACKAGE = "@cdktn/provider-aws";
// `exports.vpc = __importStar(require("./vpc/index"));` (and the plain `require(...)` form)
const EXPORT_LINE = /^exports\.([A-Za-z0-9_$]+) = (?:__importStar\(require\("(\.\/[A-Za-z0-9._/-]+)"\)\)|require\("(\.\/[A-Za-z0-9._/-]+)"\));$/;
const IGNORED_LINE = /^("use strict";|\/\*\*|\s*\*.*|\s*\*\/|\/\/.*|Object\.defineProperty\(exports, "__esModule", \{ value: true \}\);|exports\.[A-Za-z0-9_$. =]+ = void 0;|)$/;
// The prelude: helper definitions (a `var __helper = (this && this.__helper) || …` statement
// and its indented or closing continuation lines) before the first export line.
const HELPER_START = /^var (__createBinding|__setModuleDefault|__importStar) = \(this && this\.\1\) \|\| /;
const CONTINUATION = /^(\s|[})])/;

function providerEntryPoint(file) {
  if (path.basename(file) !== "index.js" || path.basename(path.dirname(file)) !== "lib") return false;
  try {
    const pkg = JSON.parse(fs.readFileSync(path.join(path.dirname(file), "..", "package.json"), "utf8"));
    return pkg.name === PACKAGE;
  } catch {
    return false;
  }
}

// TypeScript's __importStar: an ES module as is, a CommonJS one as a namespace with `default`.
function importStar(mod) {
  if (mod && mod.__esModule) return mod;
  const result = {};
  if (mod != null) {
    for (const key of Object.getOwnPropertyNames(mod)) {
      if (key !== "default") Object.defineProperty(result, key, { enumerable: true, get: () => mod[key] });
    }
  }
  Object.defineProperty(result, "default", { enumerable: true, value: mod });
  return result;
}

function lazyExports(file) {
  const namespaces = [];
  let inHelper = false;
  for (const line of fs.readFileSync(file, "utf8").split("\n")) {
    const match = EXPORT_LINE.exec(line);
    if (match) {
      namespaces.push([match[1], path.join(path.dirname(file), match[2] || match[3]), Boolean(match[2])]);
      inHelper = false;
    } else if (namespaces.length === 0 && HELPER_START.test(line)) {
      inHelper = true;
    } else if (!(inHelper && CONTINUATION.test(line))) {
      inHelper = false;
      if (!IGNORED_LINE.test(line)) return null;
    }
  }
  const exports = {};
  Object.defineProperty(exports, "__esModule", { value: true });
  for (const [name, target, star] of namespaces) {
    Object.defineProperty(exports, name, {
      enumerable: true,
      configurable: true,
      get() {
        const value = star ? importStar(require(target)) : require(target);
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
