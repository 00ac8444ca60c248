"""Batch scoring: a CSV or Parquet file of passengers -> the same rows with the model's answers.

    python -m serving.batch --input data/raw/test.csv --output predictions.parquet
    python -m serving.batch --input big.parquet --output out.csv --chunk-size 100000
    python -m serving.batch --input test.csv --output out.csv --engine spark --spark-master local[2]

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
the signature, never guessed by pandas chunk by chunk, so a chunk whose Age is all empty or all
whole numbers scores exactly as it would in the full file; only an empty cell is null ("NA" is
a name, not a null). Output columns keep the input as read: a CSV's cells come back as the same
text; Parquet columns keep their Arrow types; a CSV written out as Parquet has its signature
columns typed by the signature and its other columns as strings.

The training domain. A model that carries its training domain (serving.contract) gets the
server's rule here too: a required value outside it (Sex 'banana', Pclass 7) makes the row's
`error`; an optional one (Age -40, Embarked 'X') is scored as unknown and, with the pandas
engine, counted by column in the sidecar's `out_of_domain`.

Bad input. A missing required column, or an input that does not exist or cannot be read as
CSV/Parquet, stops the job before anything is written: one line on stderr naming the file and
the column, exit status 2. A bad row (Pclass "abc", Sex empty, Age "inf") is kept: its
`prediction` and `probability` are empty and `error` names the column and the value, e.g.
``Pclass: 'abc' is not an integer``; the job still succeeds (exit 0), prints how many rows failed
and the first ones (1-based data row numbers, header excluded) on stderr, and counts them in the
sidecar. Filter on `error` to find them.

Engines.

- ``pandas`` (default): streams the input in chunks of ``--chunk-size`` rows (pandas' chunked
  CSV reader, pyarrow's Parquet batches) and appends each scored chunk to the output, so memory
  is bounded by the chunk size, not the file size. The model loads once; rows are scored by the
  same ONNX fast path as the server (serving/model/fast.py, self-checked against the pipeline
  on load) or, if the model has none or it fails its check, by the scikit-learn pipeline. A tqdm
  progress bar shows on a terminal only.
- ``spark``: reads the file with Spark, types the rows with the same code as the pandas engine
  (mapInPandas), predicts with ``mlflow.pyfunc.spark_udf`` (env_manager="local": the executors
  use this Python, PYSPARK_PYTHON defaults to it) and computes the probability with the
  pipeline's predict_proba in the same mapInPandas pass (the model's directory is shipped to
  the executors with SparkContext.addFile; this package with addPyFile). pyfunc rejects a null
  in an integer column (SibSp, Parch: "Can not safely convert float64 to int64", mlflow#5207),
  so a row with such a null takes its label from the pipeline's predict, the function pyfunc
  itself calls, and the UDF sees a placeholder whose answer is dropped. Row order: each row
  gets ``monotonically_increasing_id()`` as it is read (ordered for a single input file), and
  the result is written by ONE task (``repartition(1).sortWithinPartitions``) to a temp
  directory whose single part file is then moved to ``--output``. That single writer is the
  honest limit of "one output file": the scoring is distributed, the final write is not.
  ``--spark-master`` (or SPARK_MASTER; default ``local[*]``) picks the cluster. On a real
  cluster the input and output paths must be visible to the driver and executors alike (a
  shared filesystem), the executors need the same Python environment (pip install -r
  requirements.lock) and the registry must be reachable from the driver (MLFLOW_TRACKING_URI):
  ``python -m serving.batch --engine spark --spark-master spark://host:7077 --input
  /shared/in.csv --output /shared/out.parquet``, or the same flags after ``spark-submit
  --master spark://host:7077 serving/batch/__main__.py`` (the script finds this package beside it).

The registry is MLFLOW_TRACKING_URI, else the embedded sqlite store at the repo root.
"""
