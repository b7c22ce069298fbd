// The TypeScript loader of the processes the tests start (the server, the CLI): the one tap runs
// the test files with (@tapjs/typescript: ts-node, transpile only, the project's tsconfig.json).
// c8 merges the coverage of every process by file, in offsets into the code the loader produced.
// Through tsx the server's src/ files were other code (esbuild's) than the tests' own, and when
// c8 took a tsx source map for ts-node's offsets, `npm test` printed coverage of 58 lines of
// src/, all covered (which pair it took varied from run to run). With one loader for every
// process, the code, the offsets and the maps agree.
process.env.TS_NODE_TRANSPILE_ONLY ??= '1'
await import('@tapjs/typescript/import')
