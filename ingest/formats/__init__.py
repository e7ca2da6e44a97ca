"""Device formats. Each module turns one wire format into :class:`ingest.model.Position`
values and named :class:`ingest.model.Rejection` values, purely (no I/O): the receive
time comes in with the message. :mod:`ingest.decode` picks the module by topic."""
