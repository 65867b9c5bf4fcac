#!/usr/bin/python3
"""Runs the notebooks headless, end to end, with Debian's Python kernel.

Usage: run_notebooks.py NOTEBOOK_DIR MDNSTAB_BIN WORK_DIR [NAME ...]

Each notebook must be stored without outputs; it is executed with nbclient on
the kernel "python3" started from /usr/bin/python3 (checked from inside the
kernel), with MDNSTAB_BIN, MDNSTAB_NOTEBOOK_QUICK=1 and an output folder under
WORK_DIR. The executed copies are kept in WORK_DIR as test artifacts. Exit 77
(a ctest skip) only when nbclient, ipykernel or matplotlib is missing;
scripts/setup.sh installs them, so CI runs this.
"""
import os
import sys
import time

PYTHON = "/usr/bin/python3"


def main(nb_dir, binary, work, names):
    missing = []
    for mod in ("nbclient", "nbformat", "ipykernel", "matplotlib", "numpy"):
        try:
            __import__(mod)
        except ImportError:
            missing.append(mod)
    if missing:
        print(f"SKIPPED: Python modules missing for {PYTHON}: {', '.join(missing)} "
              "(scripts/setup.sh installs python3-nbclient, python3-ipykernel, python3-matplotlib)")
        return 77
    if os.path.realpath(sys.executable) != os.path.realpath(PYTHON):
        print(f"FAIL: run this with {PYTHON}, not {sys.executable}")
        return 1
    import nbformat
    from nbclient import NotebookClient
    from jupyter_client.kernelspec import KernelSpecManager

    # The kernel must be Debian's Python, not a python3 found first on PATH (pyenv).
    spec = KernelSpecManager().get_kernel_spec("python3")
    if os.path.realpath(spec.argv[0]) != os.path.realpath(PYTHON) and spec.argv[0] != "python3":
        print(f"FAIL: kernel python3 runs {spec.argv[0]}")
        return 1

    root = os.path.dirname(os.path.abspath(nb_dir))
    os.makedirs(work, exist_ok=True)
    paths = sorted(p for p in os.listdir(nb_dir) if p.endswith(".ipynb"))
    if names:
        paths = [p for p in paths if p[:-len(".ipynb")] in names]
    if not paths:
        print("FAIL: no notebook found")
        return 1
    failures = 0
    env_keep = dict(os.environ)
    for p in paths:
        path = os.path.join(nb_dir, p)
        nb = nbformat.read(path, as_version=4)
        # Stored without outputs: nothing executed is committed.
        stored = [i for i, c in enumerate(nb.cells)
                  if c.cell_type == "code" and (c.get("outputs") or c.get("execution_count") is not None)]
        if stored:
            print(f"FAIL: {p}: cells {stored} are stored with outputs or execution counts")
            failures += 1
            continue
        out = os.path.join(work, p[:-len(".ipynb")])
        os.makedirs(out, exist_ok=True)
        os.environ.update({"MDNSTAB_BIN": os.path.abspath(binary), "MDNSTAB_ROOT": root,
                           "MDNSTAB_NOTEBOOK_QUICK": "1", "MDNSTAB_NOTEBOOK_OUT": out,
                           "PYDEVD_DISABLE_FILE_VALIDATION": "1",
                           # Debian's Python finds Debian's modules; a pyenv's PYTHONPATH must not leak in.
                           "PYTHONPATH": ""})
        # Checked from inside the kernel, after the notebook ran: which interpreter it was.
        nb.cells.append(nbformat.v4.new_code_cell(
            "import sys, os\nassert os.path.realpath(sys.executable) == os.path.realpath(%r), sys.executable" % PYTHON))
        client = NotebookClient(nb, timeout=300, kernel_name="python3", resources={"metadata": {"path": root}})
        t0 = time.time()
        try:
            client.execute()
            status = "ok"
        except Exception as e:  # a failing cell: report its error, go on with the others
            status = f"FAILED: {type(e).__name__}: {str(e)[-1500:]}"
            failures += 1
        nb.cells.pop()
        nbformat.write(nb, os.path.join(work, p))
        print(f"notebook {p}: {status} ({time.time() - t0:.1f} s; executed copy in {work})")
        os.environ.clear()
        os.environ.update(env_keep)
    print(f"{len(paths) - failures} passed, {failures} failed")
    return 1 if failures else 0


if __name__ == "__main__":
    if len(sys.argv) < 4:
        print(__doc__)
        sys.exit(2)
    sys.exit(main(sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4:]))
