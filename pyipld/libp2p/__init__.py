"""The libp2p transport stack bitswap runs on, sans-I/O machines plus one trio driver.

``multistream`` (multistream-select 1.0), ``noise`` (Noise XX with libp2p's handshake payload),
``yamux`` (stream multiplexing with flow control), ``identify`` (identify and ping), ``peer``
(Ed25519 identities and peer IDs), ``multiaddr`` (/ip4, /ip6, /dns*, /tcp, /p2p) and ``driver``
(TCP connections and streams under trio: :class:`~pyipld.libp2p.driver.Host`). Bitswap itself
is in :mod:`pyipld.bitswap`. Guide: docs/libp2p.md.
"""
