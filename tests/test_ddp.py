"""`torchrun` launches the same code path with DistributedDataParallel; here 2 processes on gloo."""

import json
import re
import subprocess
import sys

from tests.conftest import QUICK


def test_two_process_gloo_run_gives_the_same_masks_and_weights_on_both_ranks(tmp_path):
    store = tmp_path / "store"
    proc = subprocess.run(
        [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
         "-m", "harness", "run", "weight-rewinding", "mnist1d", "--iterative", "--rounds", "2",
         "--epochs-scale", str(QUICK), "-t", "1.5", "--store", str(store), "--no-tracking"],
        capture_output=True, text=True, cwd=tmp_path, timeout=600,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    lines = re.findall(r"rank (\d)/2: round (\d) weights (\w+) mask (\w+)", proc.stderr)
    by_rank = {r: {(rnd, w, m) for _, rnd, w, m in lines if _ == r} for r in ("0", "1")}
    assert len(by_rank["0"]) == 2, proc.stderr[-3000:]
    assert by_rank["0"] == by_rank["1"]
    results = [json.loads(p.read_text()) for p in store.glob("retrain/*/result.json")]
    assert {(str(r["round"]), r["weights_sha256"], r["mask_sha256"]) for r in results} == by_rank["0"]
    assert "weight-rewinding on mnist1d" in proc.stdout
