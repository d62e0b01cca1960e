"""CPU per request of the OpenAI SDK over its own httpx stack vs over an aiohttp transport.

Usage: python bench/http_clients.py [--requests 1024] [--concurrency 128] [--rounds 2]

bench/profile_item.py finds the HTTP client stack (httpx2, httpcore2, h11, anyio, openai)
at about half of clinsynth's CPU per item. This measures what a different transport under the
same SDK would save, before anyone rewrites clinsynth's: ``AsyncOpenAI.chat.completions.create``
with ``DefaultAsyncHttpxClient()`` (the SDK's default) and with
``DefaultAsyncHttpxClient(transport=<aiohttp session>)`` (a minimal transport written here:
no size cap, metering, error mapping or per-loop sessions, so it is a lower bound of the cost
of a real one). The stub server runs in this process's other threads; CPU is that of the
event-loop thread only (``time.thread_time``), i.e. the client's. Rounds alternate the two
clients. Writes bench/results/http_clients.json.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from clinsynth.testing.stub_server import StubServer  # noqa: E402

REPLY = json.dumps(
    {
        "id": "x",
        "object": "chat.completion",
        "created": 0,
        "model": "stub",
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": '{"answer": "furosemide"}'},
                "finish_reason": "stop",
            }
        ],
        "usage": {"prompt_tokens": 300, "completion_tokens": 8, "total_tokens": 308},
    }
)


def aiohttp_client() -> Any:
    import aiohttp
    import openai

    httpx: Any = __import__(openai.DefaultAsyncHttpxClient.__mro__[1].__module__.split(".")[0])

    class AiohttpTransport(httpx.AsyncBaseTransport):
        def __init__(self) -> None:
            self.session: aiohttp.ClientSession | None = None

        async def handle_async_request(self, request: Any) -> Any:
            if self.session is None:
                self.session = aiohttp.ClientSession(
                    connector=aiohttp.TCPConnector(limit=0), auto_decompress=False
                )
            body = b"".join([chunk async for chunk in request.stream])
            skip = (b"host", b"content-length", b"transfer-encoding")
            headers = [(k.decode(), v.decode()) for k, v in request.headers.raw if k not in skip]
            async with self.session.request(
                request.method, str(request.url), headers=headers, data=body
            ) as resp:
                content = await resp.read()
                return httpx.Response(
                    resp.status, headers=list(resp.raw_headers), content=content, request=request
                )

        async def aclose(self) -> None:
            if self.session is not None:
                await self.session.close()

    return openai.DefaultAsyncHttpxClient(transport=AiohttpTransport())


async def load(base_url: str, kind: str, requests: int, concurrency: int) -> dict[str, float]:
    import openai

    http = openai.DefaultAsyncHttpxClient() if kind == "httpx" else aiohttp_client()
    client = openai.AsyncOpenAI(base_url=base_url, api_key="bench", http_client=http, max_retries=0)
    gate = asyncio.Semaphore(concurrency)
    prompt = [{"role": "user", "content": "Summarise the note. " * 60}]

    async def one() -> None:
        async with gate:
            await client.chat.completions.create(model="stub", messages=prompt)  # type: ignore[arg-type]

    await asyncio.gather(*[one() for _ in range(concurrency)])  # connections open, warm
    cpu, wall = time.thread_time(), time.perf_counter()
    await asyncio.gather(*[one() for _ in range(requests)])
    cpu, wall = time.thread_time() - cpu, time.perf_counter() - wall
    await client.close()
    return {"cpu_ms_per_request": round(1000 * cpu / requests, 3), "wall_s": round(wall, 2)}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--requests", type=int, default=1024)
    p.add_argument("--concurrency", type=int, default=128)
    p.add_argument("--rounds", type=int, default=2)
    p.add_argument("--latency", type=float, default=0.05)
    p.add_argument("--out", type=Path, default=REPO / "bench" / "results" / "http_clients.json")
    args = p.parse_args()
    load_start = os.getloadavg()
    runs: list[dict[str, Any]] = []
    with StubServer(lambda body: REPLY, latency_s=args.latency, keep_requests=False) as stub:
        for r in range(args.rounds):
            for kind in ("httpx", "aiohttp"):
                res = asyncio.run(load(stub.base_url, kind, args.requests, args.concurrency))
                runs.append({"round": r, "client": kind, **res})
                print(runs[-1])
    mean = {
        kind: round(
            sum(x["cpu_ms_per_request"] for x in runs if x["client"] == kind) / args.rounds, 3
        )
        for kind in ("httpx", "aiohttp")
    }
    result = {
        "benchmark": "OpenAI SDK CPU per chat-completion request: httpx stack vs aiohttp transport",
        "settings": vars(args) | {"out": str(args.out.name)},
        "runs": runs,
        "mean_cpu_ms_per_request": mean,
        "aiohttp_over_httpx": round(mean["aiohttp"] / mean["httpx"], 3),
        "machine": {
            "loadavg_start": load_start,
            "loadavg_end": os.getloadavg(),
            "cpu_count": os.cpu_count(),
        },
    }
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"mean {mean} -> {args.out}")


if __name__ == "__main__":
    main()
