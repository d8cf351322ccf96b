// Helia serving a DIRECTORY over bitswap, loopback only (pyipld interop tests).
// helia_peer.mjs (shared/peers/helia) serves single files; this adds a directory
// import with the same node set-up. Run from a directory holding
// node20-polyfill.mjs and a node_modules link to the Helia install
// (tests/_interop_bitswap.py prepares it), inside `unshare -n`.
//   node helia_dir_peer.mjs DIR   -> prints {"event":"ready","multiaddr":…,"cid":…}
import './node20-polyfill.mjs' // first: Node 20 lacks Promise.withResolvers
import process from 'node:process'

import { noise } from '@chainsafe/libp2p-noise'
import { yamux } from '@chainsafe/libp2p-yamux'
import { withBitswap } from '@helia/bitswap'
import { withLibp2pLight } from '@helia/libp2p'
import { globSource, unixfs } from '@helia/unixfs'
import { generateKeyPair } from '@libp2p/crypto/keys'
import { identify } from '@libp2p/identify'
import { tcp } from '@libp2p/tcp'
import { MemoryBlockstore } from 'blockstore-core/memory'
import { MemoryDatastore } from 'datastore-core/memory'
import { createHeliaLight } from 'helia'

const dir = process.argv[2]
if (dir == null) throw new Error('usage: helia_dir_peer.mjs DIR')
const helia = createHeliaLight({ blockstore: new MemoryBlockstore(), datastore: new MemoryDatastore(), routers: [] })
withLibp2pLight(helia, {
  privateKey: await generateKeyPair('Ed25519'),
  addresses: { listen: ['/ip4/127.0.0.1/tcp/0'] },
  transports: [tcp()],
  connectionEncrypters: [noise()],
  streamMuxers: [yamux()],
  peerDiscovery: [],
  services: { identify: identify() }
})
withBitswap(helia)
await helia.start()
const fs = unixfs(helia)
let root
for await (const entry of fs.addAll(globSource(dir, '**/*', { hidden: true }), { cidVersion: 1, rawLeaves: true, wrapWithDirectory: true })) {
  root = entry
}
const addrs = helia.libp2p.getMultiaddrs().map(ma => ma.toString())
process.stdout.write(JSON.stringify({
  event: 'ready',
  multiaddr: addrs.find(a => a.startsWith('/ip4/127.0.0.1/tcp/')) ?? addrs[0],
  cid: root.cid.toString()
}) + '\n')
const stop = async () => { await helia.stop().catch(() => {}); process.exit(0) }
process.on('SIGINT', stop)
process.on('SIGTERM', stop)
