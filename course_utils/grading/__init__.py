"""Exercises, solutions and the autograder, compatible with nbgrader: the map, in pipeline order.

Each module imports only modules listed above it (``tests/grading/test_pipeline.py`` checks
it, function-level and ``TYPE_CHECKING`` imports included), so a submission is followed by
reading down the list:

- ``notebook_format``: markers, nbgrader schema-3 metadata, stubs and checksums (pure);
- ``build``: ``solutions/`` -> ``exercises/`` (``python -m course_utils build``);
- ``records``: the result records (statuses) every later stage fills or reads;
- ``checks``: the trusted verdict's probe files (``solutions/probes/``), read as text;
- ``names``: learner ids from folder names (one to one), look-alike names, file names that
  never clash on a case-insensitive file system;
- ``assignment``: a solution with its exercise; the gradebook's columns, the visible tests;
- ``intake``: which entries of ``submissions/`` are learners; read a notebook safely;
- ``assemble``: the submission put on its solution's skeleton, cells in running order;
- ``seccomp``: the kernel's system-call filter, a classic-BPF program (no keyring, ptrace ...);
- ``sandbox``: the bubblewrap command line that isolates a grading kernel (filter, tmpfs, uids);
- ``launcher``: start the kernel under limits it cannot raise;
- ``kernel``: one grading kernel with per-cell timeouts and restarts;
- ``probe``: runs inside the kernel: a fingerprint of the hooks that decide a verdict;
- ``allowlists``: what a rebuilt model may call and read, and which layer settings are sizes;
- ``modelspec``: runs inside the kernels: a model as plain data and back (describe, rebuild);
- ``observe``: runs inside the kernels: a probe's result as plain JSON, inputs, behaviour;
- ``verdict``: proof nonces, hidden-test split, canaries, the hook audit, per-test status;
- ``trusted``: the verdict outside the kernel: probes in the learner's and a reference
  kernel, their results compared in the grader's own process;
- ``feedback``: the learner's HTML page and the table ``check`` prints (records only);
- ``gradebook``: the output layout (``grades.csv``, ``results/``, ``feedback/``), read and
  written only here (a shard's copied without following a link), and the one ``write_atomically``;
- ``report``: kept for old imports (``feedback`` and ``gradebook`` with ``Assignment``s);
- ``grade``: one notebook and a batch, orchestration only;
- ``check``: grade one's own notebook and print a table (``python -m course_utils check``);
- ``shard``: grade a class in shards and merge them (``grade --shard I/N``, ``grade merge``);
- ``instructor_report``: the class page of a grading output (``python -m course_utils report``);
- ``cli``: the command lines of ``grade``, ``grade merge`` and ``report``;

No edge runs against this order (``tests/grading/test_pipeline.py`` checks it), and nothing
here imports the maintainers' tools (``mutants`` and ``throughput`` live in
``course_utils.devtools``). ``python -m course_utils grade | report`` call ``cli``.

Nothing is imported here, so ``import course_utils.grading`` is cheap.
"""

from __future__ import annotations

__all__: list[str] = []
