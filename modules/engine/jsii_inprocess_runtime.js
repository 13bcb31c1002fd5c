// A jsii runtime that runs the kernel in this process. jsii's Python side starts it as
// `node <this file>` when JSII_RUNTIME names it (modules/engine/provider.py sets that).
//
// jsii's own entry point (bin/jsii-runtime.js) only spawns a second Node process for the
// kernel (lib/program.js) and relays: requests arrive on its stdin, answers leave on its
// stdout, and the kernel's console output travels as {"stdout"|"stderr": <base64>} lines on
// stderr. That relay costs a whole Node process (~50 MB resident). Here the kernel's channel
// (fd 3, read and written synchronously) is mapped onto stdin/stdout, and its console output
// is wrapped exactly as the relay wraps it, so the Python side sees the same protocol.
"use strict";

const crypto = require("crypto");
const fs = require("fs");
const os = require("os");
const path = require("path");
const { Writable } = require("stream");

const CHANNEL_FD = 3;
const embedded = process.env.LLM_PLATFORM_JSII_EMBEDDED;
if (!embedded) throw new Error("LLM_PLATFORM_JSII_EMBEDDED is not set (see modules/engine/provider.py)");

// The kernel looks for its index worker beside itself: lay both out once per kernel build.
const program = fs.readFileSync(path.join(embedded, "lib__program.js"));
const digest = crypto.createHash("sha256").update(program).digest("hex").slice(0, 16);
const lib = path.join(os.tmpdir(), `llm-platform-jsii-${digest}`, "lib");
if (!fs.existsSync(path.join(lib, "program.js"))) {
  fs.mkdirSync(lib, { recursive: true });
  fs.copyFileSync(path.join(embedded, "lib__runtime-index-worker.js"), path.join(lib, "runtime-index-worker.js"));
  const staged = path.join(lib, `program.js.${process.pid}`);
  fs.writeFileSync(staged, program);
  fs.renameSync(staged, path.join(lib, "program.js")); // atomic: concurrent runs never see half a file
}

const { readSync, writeSync } = fs;
const relay = (key, data) => writeSync(2, `${JSON.stringify({ [key]: Buffer.from(data).toString("base64") })}\n`);

// The channel: reads of fd 3 come from stdin, writes go to stdout; the kernel's error lines
// (written to fd 2) are wrapped like any other stderr output.
fs.readSync = (fd, ...rest) => readSync(fd === CHANNEL_FD ? 0 : fd, ...rest);
fs.writeSync = (fd, buffer, ...rest) => {
  if (fd === CHANNEL_FD) return writeSync(1, buffer, ...rest);
  if (fd !== 2) return writeSync(fd, buffer, ...rest);
  const [offset = 0, length] = typeof buffer === "string" ? [] : rest;
  const data = typeof buffer === "string" ? buffer : buffer.subarray(offset, length === undefined ? undefined : offset + length);
  relay("stderr", data);
  return typeof buffer === "string" ? Buffer.byteLength(buffer) : data.length;
};

// The kernel's console output, wrapped as the relay wraps it (stdout carries only the protocol).
function wrapped(key) {
  const stream = new Writable({ write(chunk, _encoding, done) { relay(key, chunk); done(); } });
  return Object.assign(stream, { fd: 2, isTTY: false });
}
Object.defineProperty(process, "stdout", { value: wrapped("stdout"), configurable: true });
Object.defineProperty(process, "stderr", { value: wrapped("stderr"), configurable: true });

// jsii's relay starts the kernel with --preserve-symlinks, and the kernel then links each cached
// package into its node_modules with one symlink instead of hard-linking every file (~0.8 s
// for the AWS provider). modules/engine/provider.py passes the flag through NODE_OPTIONS, which
// process.execArgv does not show, so the kernel is told here.
if (!process.execArgv.includes("--preserve-symlinks")) process.execArgv.push("--preserve-symlinks");
require(path.join(lib, "program.js"));
