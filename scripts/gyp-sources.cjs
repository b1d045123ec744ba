// Lists the native sources for binding.gyp (which cannot glob), by kind:
// portable | avx2 | avx512 — the same split cmake/isa_flags.cmake makes.
const { readdirSync, statSync } = require("node:fs");
const { join, relative } = require("node:path");

const root = join(__dirname, "..");
function walk(dir, recurse) {
  return readdirSync(dir).flatMap((name) => {
    const p = join(dir, name);
    if (statSync(p).isDirectory()) return recurse ? walk(p, true) : [];
    return p.endsWith(".cpp") ? [p] : [];
  });
}
const all = [
  ...walk(join(root, "native/core"), true),
  ...walk(join(root, "native/providers/cpu"), true),
  ...walk(join(root, "native/providers"), false),
  ...walk(join(root, "native/binding"), false),
].map((p) => relative(root, p));
const kind = process.argv[2];
const isa = (p) => (p.endsWith("_avx512.cpp") ? "avx512" : p.endsWith("_avx2.cpp") ? "avx2" : "portable");
console.log(all.filter((p) => isa(p) === kind).join(" "));
