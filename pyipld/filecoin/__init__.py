"""Filecoin pieces: piece commitments (CommP, piece CID v1/v2) and deal-sized CAR packing.

``commp`` computes piece CIDs of any byte stream (fr32 padding, SHA-256 trunc254 tree; optional
numpy and C accelerators in ``_commp_accel``/``_commp_native.c``, the plain reference in
``_commp_ref``); ``pack`` splits a tree into numbered CARs that each fit a deal and writes a
manifest with their piece CIDs; ``pack_parallel`` runs the same packing as tasks on an executor
(Dask: :func:`pyipld.distributed.pack_dask`), byte for byte. The CAR format itself is :mod:`pyipld.car`. Guide: docs/commp.md.
"""
