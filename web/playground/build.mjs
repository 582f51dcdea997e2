// Bundles the playground into OUTDIR: index.html plus assets/ with content-hashed file names
// (the service caches those for a year and revalidates index.html), each with a gzipped copy.
//   node build.mjs --outdir DIR [--node-modules DIR]
// --node-modules says where `npm ci` put the packages (default: ./node_modules), so a build
// directory can hold its own copy and the source tree stays clean.
import { mkdir, readFile, rm, writeFile } from "node:fs/promises";
import { dirname, join, relative, resolve } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import { gzipSync } from "node:zlib";
import { parseArgs } from "node:util";

const here = dirname(fileURLToPath(import.meta.url));
const { values } = parseArgs({
  options: { outdir: { type: "string" }, "node-modules": { type: "string" } },
});
if (!values.outdir) {
  console.error("usage: node build.mjs --outdir DIR [--node-modules DIR]");
  process.exit(2);
}
const outdir = resolve(values.outdir);
const nodeModules = resolve(values["node-modules"] ?? join(here, "node_modules"));
const esbuild = await import(pathToFileURL(join(nodeModules, "esbuild", "lib", "main.js")).href);

await rm(outdir, { recursive: true, force: true });
await mkdir(outdir, { recursive: true });
const result = await esbuild.build({
  entryPoints: [join(here, "src", "main.js")],
  bundle: true,
  minify: true,
  format: "esm",
  target: ["es2020"],
  outdir,
  entryNames: "assets/[name]-[hash]",
  assetNames: "assets/[name]-[hash]",
  nodePaths: [nodeModules],
  metafile: true,
  legalComments: "linked",
  logLevel: "warning",
});

const outputs = Object.keys(result.metafile.outputs).map((p) => relative(outdir, resolve(p)));
const script = outputs.find((p) => p.endsWith(".js"));
const style = outputs.find((p) => p.endsWith(".css"));
const template = await readFile(join(here, "src", "index.html"), "utf8");
const html = template.replace("%SCRIPT%", script).replace("%STYLE%", style);
await writeFile(join(outdir, "index.html"), html);
// Gzipped copies, served to browsers that accept them (the script shrinks to about a third).
for (const file of [...outputs, "index.html"]) {
  const bytes = await readFile(join(outdir, file));
  await writeFile(join(outdir, file + ".gz"), gzipSync(bytes, { level: 9 }));
}
console.log(`playground: ${outputs.length + 1} files (and their .gz) in ${outdir}`);
