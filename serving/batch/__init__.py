"""Batch scoring: a CSV or Parquet file of passengers -> the same rows with the model's answers.

    python -m serving.batch --input data/raw/test.csv --output predictions.parquet
    python -m serving.batch --input big.parquet --output out.csv --chunk-size 100000
    python -m serving.batch --input test.csv --output out.csv --engine spark --spark-master local[2]
    spark-submit --master spark://host:7077 serving/batch/__main__.py --engine spark ...

Output: every input row, in input order, with all its input columns, plus `prediction` (0/1, the
label MLflow's pyfunc gives), `probability` (P(survived), the pipeline's predict_proba) and `error`
(empty unless the row could not be scored). The file type follows the extension (.csv, .csv.gz,
.parquet, .pq) for input and output alike. The model is resolved once (an alias such as
``models:/titanic@champion`` to its version) and every row is scored by that one version, named
in ``<output>.meta.json`` (name, version, run id, URIs, row and error counts) and, for Parquet, in
the file's key-value metadata too (``model.name``, ``model.version``, ``model.run_id``,
``model.uri``). The output appears under its name only when complete (written to a temp file
beside it, then renamed).

Input columns. The model's signature says which columns it reads and their types (Pclass and Sex
required; Name, Age, SibSp, Parch, Fare, Cabin, Embarked optional; other columns such as
PassengerId and Ticket are carried through untouched). CSV cells are read as text and typed by
the signature, never guessed chunk by chunk, so a chunk whose Age is all empty or all whole
numbers scores exactly as it would in the full file; only an empty cell is null ("NA" is a name,
not a null).

Output columns (serving.batch.schema; the same for both engines and both output formats): every
input column, then `prediction` int64, `probability` double, `error` string. A Parquet input's
columns keep their Arrow types; a CSV input's columns are its text, exactly, unless
``--infer-types``: then the model's columns take the signature's types and every other column int64
or double when every non-empty cell of its first 10,000 rows is one (a later cell that does not fit
stops the job, naming it).

The training domain. A model that carries its training domain (serving.contract) gets the
server's rule here too: a required value outside it (Sex 'banana', Pclass 7) makes the row's
`error`; an optional one (Age -40, Embarked 'X') is scored as unknown and counted by column in
the sidecar's `out_of_domain`.

Bad input. A missing required column, or an input that does not exist or cannot be read as
CSV/Parquet, stops the job before anything is written: one line on stderr naming the file and
the column, exit status 2. A bad row (Pclass "abc", Sex empty, Age "inf") is kept: its
`prediction` and `probability` are empty and `error` names the column and the value, e.g.
``Pclass: 'abc' is not an integer``; the job still succeeds (exit 0), prints how many rows failed
and the first ones (1-based data row numbers, header excluded) on stderr, and counts them in the
sidecar. Filter on `error` to find them.

Scoring (serving.batch.chunks, one function for both engines): a chunk's columns are typed with
Arrow kernels, the model's own ``derive_columns`` (the row function's columnar twin, checked
against it on load) derives the features of the whole chunk, and the server's ONNX graph runs
once per chunk (serving.model.columnar); an older model without the twin goes row by row through
the server's fast path, a model without a fast path (or ``--no-fast-path``) through the
scikit-learn pipeline. All give the server's answers.

Engines.

- ``pandas`` (default): streams the input in chunks of ``--chunk-size`` rows (Arrow's CSV reader,
  Parquet batches), scores ``--threads`` chunks side by side (default: the CPU count) and appends
  them to the output in order, so memory is bounded by the chunk size, not the file size. A tqdm
  progress bar shows on a terminal only.
- ``spark`` (the optional extra: ``make spark``; Java 17): Spark reads and splits the input, each
  task scores its partition with the same chunk function and writes its own part file, in input
  order by an explicit row number: ``--output out.parquet`` becomes a directory of
  ``part-NNNNN.parquet`` files (``_SUCCESS`` when complete), or one file with ``--coalesce``.
  ``--spark-master`` (or SPARK_MASTER; default ``local[*]``) picks the cluster, ``--spark-conf``
  sets anything else. On a cluster the input and output paths must be visible to the driver and
  the executors alike (a shared filesystem) and the executors need this Python environment
  (README: shipping it with ``spark-submit --archives``); the registry need only be reachable from
  the driver (the model ships with the job).

The registry is MLFLOW_TRACKING_URI, else the embedded sqlite store at the repo root.
"""
