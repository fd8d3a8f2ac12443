"""The one-request-per-snapshot baseline the load benchmark compares against: one HTTP POST per snapshot
(the raw snapshot as the body), the same preprocessing, then `model.predict` on that one image.
Like a threaded Flask app, each request runs on a worker thread of its own; `model.predict`
runs one call at a time, as such an app must guard it: called from several threads at once,
TensorFlow aborted this process under the benchmark's load. A bench tool, not part of the
product.

    python -m bench.baseline_server --port 8100
"""

from __future__ import annotations

import argparse
import threading

import numpy as np
import uvicorn
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route

from server.classifier import WARM_UP_SNAPSHOTS
from server.model import load_model
from server.preprocess import BadImage, preprocess_bytes


def create_app() -> Starlette:
    model = load_model()
    model.predict(np.zeros((1, 28, 28, 1), np.float32), verbose=0)  # warm up, as the real server does
    for snapshot in WARM_UP_SNAPSHOTS:
        preprocess_bytes(snapshot)
    predicting = threading.Lock()

    def predict_one(data: bytes) -> dict:
        prepared = preprocess_bytes(data)
        if prepared.image is None:
            return {"predicted_digit": None, "probabilities": [0.0] * 10, "empty": True}
        with predicting:
            probabilities = model.predict(prepared.image[np.newaxis, :, :, np.newaxis], verbose=0)[0]
        return {
            "predicted_digit": int(np.argmax(probabilities)),
            "probabilities": probabilities.tolist(),
            "empty": False,
        }

    async def classify(request: Request) -> Response:
        try:
            return JSONResponse(await run_in_threadpool(predict_one, await request.body()))
        except BadImage as bad:
            return JSONResponse({"error": str(bad)}, status_code=400)

    async def healthz(request: Request) -> Response:
        return PlainTextResponse("ok")

    return Starlette(routes=[Route("/classify", classify, methods=["POST"]), Route("/healthz", healthz)])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=8100)
    args = parser.parse_args()
    uvicorn.run(create_app(), host="127.0.0.1", port=args.port, log_level="warning")


if __name__ == "__main__":
    main()
