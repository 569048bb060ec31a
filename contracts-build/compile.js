#!/usr/bin/env node
// Compiles the lab's Solidity sources with the pinned solc-js (offline) and writes the committed
// ABI + bytecode artifacts. Run from anywhere:  node contracts-build/compile.js [--check]
//
//   hypergpu_lab/chain/contracts/*.sol  ->  hypergpu_lab/chain/artifacts/<Contract>.json
//   tests/chain/contracts/*.sol         ->  tests/chain/artifacts/<Contract>.json   (test-only contracts)
//
// --check compiles in memory and exits 1 when any committed artifact differs from what the sources
// compile to (the test suite runs this). The compiler version comes from package-lock.json; the EVM
// version is pinned below to one every chain the lab targets runs (ganache 7 stops at shanghai).
"use strict";
const fs = require("fs");
const path = require("path");
const crypto = require("crypto");
const solc = require("solc");

const ROOT = path.resolve(__dirname, "..");
const NODE_MODULES = path.join(__dirname, "node_modules");
const EVM_VERSION = "shanghai";
const OPTIMIZER = { enabled: true, runs: 200 };
const SETS = [
  { sources: "hypergpu_lab/chain/contracts", out: "hypergpu_lab/chain/artifacts" },
  { sources: "tests/chain/contracts", out: "tests/chain/artifacts" },
];

function sourcesOf(dir) {
  return fs.readdirSync(path.join(ROOT, dir)).filter((f) => f.endsWith(".sol")).sort()
    .map((f) => `${dir}/${f}`);
}

function findImport(unit) {
  // Units are repo-relative paths; packages ("@openzeppelin/...") come from contracts-build/node_modules.
  for (const base of [ROOT, NODE_MODULES]) {
    const file = path.join(base, unit);
    if (file.startsWith(base + path.sep) && fs.existsSync(file)) return { contents: fs.readFileSync(file, "utf8") };
  }
  return { error: `not found: ${unit}` };
}

function compile() {
  const units = SETS.flatMap((s) => sourcesOf(s.sources));
  const input = {
    language: "Solidity",
    sources: Object.fromEntries(units.map((u) => [u, { content: fs.readFileSync(path.join(ROOT, u), "utf8") }])),
    settings: {
      evmVersion: EVM_VERSION,
      optimizer: OPTIMIZER,
      outputSelection: { "*": { "*": ["abi", "evm.bytecode.object", "evm.deployedBytecode.object", "metadata"] } },
    },
  };
  const output = JSON.parse(solc.compile(JSON.stringify(input), { import: findImport }));
  const errors = (output.errors || []).filter((e) => e.severity === "error");
  for (const e of output.errors || []) console.error(e.formattedMessage);
  if (errors.length) process.exit(2);

  const files = {};
  for (const set of SETS) {
    for (const unit of sourcesOf(set.sources)) {
      for (const [name, c] of Object.entries(output.contracts[unit] || {})) {
        if (!c.evm.bytecode.object) continue; // interfaces and abstract contracts
        const meta = JSON.parse(c.metadata);
        const artifact = {
          contractName: name,
          sourceName: unit,
          compiler: { name: "solc-js", version: solc.version(), evmVersion: EVM_VERSION, optimizer: OPTIMIZER },
          // keccak256 of every source the bytecode was built from (from solc's metadata)
          sources: Object.fromEntries(Object.keys(meta.sources).sort().map((k) => [k, meta.sources[k].keccak256])),
          abi: c.abi,
          bytecode: "0x" + c.evm.bytecode.object,
          deployedBytecode: "0x" + c.evm.deployedBytecode.object,
        };
        files[`${set.out}/${name}.json`] = JSON.stringify(artifact, null, 2) + "\n";
      }
    }
  }
  return files;
}

function main() {
  const check = process.argv.includes("--check");
  const files = compile();
  const stale = [];
  for (const set of SETS) {
    const dir = path.join(ROOT, set.out);
    const present = fs.existsSync(dir) ? fs.readdirSync(dir).filter((f) => f.endsWith(".json")) : [];
    for (const f of present) if (!(`${set.out}/${f}` in files)) stale.push(`${set.out}/${f} (no source)`);
  }
  for (const [rel, text] of Object.entries(files)) {
    const file = path.join(ROOT, rel);
    const old = fs.existsSync(file) ? fs.readFileSync(file, "utf8") : null;
    if (old === text) continue;
    if (check) stale.push(`${rel} (${old === null ? "missing" : "differs"})`);
    else {
      fs.mkdirSync(path.dirname(file), { recursive: true });
      fs.writeFileSync(file, text);
      console.log(`wrote ${rel}`);
    }
  }
  const digest = crypto.createHash("sha256").update(Object.values(files).join("")).digest("hex").slice(0, 16);
  if (check && stale.length) {
    console.error("artifacts do not match the sources; run scripts/compile_contracts.sh:\n  " + stale.join("\n  "));
    process.exit(1);
  }
  console.log(`${Object.keys(files).length} artifacts ${check ? "match" : "up to date"} (solc ${solc.version()}, ` +
    `evm ${EVM_VERSION}, digest ${digest})`);
}

main();
