"""Bitswap 1.2.0 on top of :mod:`pyipld.libp2p`.

``message`` (the wire format), ``protocol`` (sans-I/O client and server sessions), ``client``
(fetch blocks and DAGs from peers) and ``server`` (serve a blockstore). The transport stack that
used to live here is :mod:`pyipld.libp2p`; its old module paths still import, with a
``DeprecationWarning``. Guide: docs/bitswap.md.
"""

from .._moved import register_moved_modules as _register_moved_modules

_register_moved_modules()
