// tsx for the processes the tests start (the server, the CLI), with its disk cache off, as
// `npm test` has it for tap's own (TSX_DISABLE_CACHE=1). The cache, in os.tmpdir()/tsx-<uid>, is
// shared by every checkout on the machine and keyed by a file's content; its source maps carry
// the absolute paths of the checkout that compiled the file first. A started process that read
// a file another checkout had compiled reported its coverage against that checkout, and
// `npm test` in a fresh clone printed 58 lines of src/, all covered. These processes are started
// with an environment of their own, so the setting is made here, before tsx loads.
process.env.TSX_DISABLE_CACHE = '1'
await import('tsx')
