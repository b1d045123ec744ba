// npm's install step: builds the addon and the C++ tests with cmake-js, unless a
// prebuilt addon for this platform is already in prebuilds/ (prebuildify).
import { spawnSync } from "node:child_process";
import { existsSync } from "node:fs";
import { createRequire } from "node:module";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const root = join(dirname(fileURLToPath(import.meta.url)), "..");
const force = process.argv.includes("--force");
const require = createRequire(import.meta.url);

function hasPrebuild() {
  try {
    require("node-gyp-build").path(root);
    return !existsSync(join(root, "CMakeLists.txt")) || existsSync(join(root, "prebuilds"));
  } catch {
    return false;
  }
}

if (!force && hasPrebuild()) {
  console.log("neoserve: using the prebuilt addon");
  process.exit(0);
}

const cmakeJs = join(dirname(require.resolve("cmake-js/package.json")), "bin", "cmake-js");
const jobs = process.env.NEOSERVE_BUILD_JOBS ?? "2";
const result = spawnSync(process.execPath, [cmakeJs, "compile", "--out", "build", "--parallel", jobs], {
  cwd: root,
  stdio: "inherit",
});
process.exit(result.status ?? 1);
