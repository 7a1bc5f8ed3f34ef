"""dbsync performance benchmark (issue 5): ``python -m bench``. Benchmarks are not tests.

What it measures, side by side in one run on one server, so that every ratio is against a
baseline taken under the same machine load:

1. **baseline**: ``mysqldump --single-transaction --quick SRC TABLE | mysql DST``;
2. **dbsync full refresh**: ``dbsync sync TABLE --full-refresh`` (large and small table, the
   small one to show how peak memory grows with the table);
3. **dbsync incremental** after 1,000 rows spread over the table changed (their
   ``updated_at`` bumped by ``ON UPDATE``), into a small and a large target, to show that the
   cost follows the changes and not the table; and an incremental run with nothing changed;
4. **peers** for the same incremental step: an untuned dlt pipeline (``sql_table``, default
   backend, ``sqlalchemy`` destination, merge on ``id``, incremental on ``updated_at``) and
   Sling (installed privately into ``bench/.peers``; reported as not available if it can't be).

Each measurement runs ``--repeat`` times as a subprocess: wall seconds of the whole process,
peak RSS (``/usr/bin/time -f %M``; the larger of the two for a pipe), and for dbsync and dlt
the task time too (dbsync's ``seconds`` summary column / dlt's ``pipeline.run``: no
interpreter start-up or imports). Before a time is reported, the target's row count and a
checksum over every source column (normalized so that equal values match whatever type a
copier chose, computed in a UTC session) must equal the source's; otherwise the run is
INVALID and untimed.

The data is generated server-side (``seq_1_to_N``, ``INSERT … SELECT``) into scratch
databases named ``dbsync_bench_<random>*``, dropped at the end, on failure and on Ctrl-C.
Results are printed as a table with issue 5's goals (met or not, from the medians) and
written to ``bench/results/<UTC timestamp>.json``. See docs/benchmarks.md.
"""
