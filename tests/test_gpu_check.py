import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

# The GPU image has torch, transformers and pyarrow but neither Ray nor faiss: the check must not need them.
WITHOUT_RAY_AND_FAISS = """
import sys
sys.modules["faiss"] = None
sys.modules["ray"] = None
sys.argv = ["gpu_check.py", "--device", "cpu", "--tiny", "--output", sys.argv[1]]
import runpy
runpy.run_path("benchmarks/gpu_check.py", run_name="__main__")
"""


def test_the_gpu_check_rehearses_on_cpu_without_ray_or_faiss(tmp_path):
    out = tmp_path / "gpu_check.json"
    done = subprocess.run(
        [sys.executable, "-c", WITHOUT_RAY_AND_FAISS, str(out)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    result = json.loads(out.read_text())["results"]
    encoder = {(r["texts"], r["dtype"]) for r in result["encoder"]["tiny"]}
    assert encoder == {(t, d) for t in ("questions", "300-word documents") for d in ("fp32", "bf16")}
    assert result["training_step_bf16"]["tiny"]["steps_per_second"] > 0
    assert {r["dtype"] for r in result["entity_embedding"]["tiny"]} == {"fp32", "bf16"}
    linking = result["linking_gpu_flat"]["tiny"]
    assert linking["entities"] == 2000 and linking["spans_searched_per_doc"] > 0
