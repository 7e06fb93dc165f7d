"""The v1 event contract: the event model, the decoder and dead letters. Bytes in, events or
reasons out; imports nothing else of driftnet's.

Start at :mod:`driftnet.contract.events` (the model; its content in :mod:`driftnet.contract.content`,
its other parts in :mod:`driftnet.contract.parts`), then :mod:`driftnet.contract.decode`.
"""
