"""Evidence from live traffic: the rows a server answers, kept and compared off the response path.

Every answered prediction request hands its typed rows and labels to `hook.observe` (one call,
for /predict, /invocations and the V2 endpoints); a thread in each worker then adds them to the
answering version's drift window (drift.py: PSI against the training profile) and, under
`--shadow ALIAS`, has the shadow version score them and counts agreement (shadow.py): under
`python -m serving` in the shadow scorer process, to which it sends them (relay.py). The metric
names (instruments.py) are also what `python -m training.promote` and the dashboard read.
"""
