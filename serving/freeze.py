"""Imported last by the forkserver (pool.py's preload list): move every object created so far (torch's
and the engine's modules, ~10^5 objects) into the garbage collector's permanent generation.

Why: workers are forked from the forkserver and share its memory pages until they write to them. A
collection in a worker walks every tracked object and writes its GC header, so without this the pages of
torch's Python objects would be copied into each worker one collection after another (copy-on-write),
and the sharing measured right after the fork (PSS) would wear off under load.
"""
import gc

gc.freeze()
