"""The clinsynth core as five operations for host apps: :class:`ClinsynthToolkit`.

It holds the settings and the data directory and exposes search, generation through the
critic loop, critique of one item, label correction and fine-tuning, each taking and
returning a model of :mod:`clinsynth.tools.models`. Nothing is built until an operation
runs: importing this module touches neither the network nor the disk. The toolkit sits above
the graphs and drives them; those imports wait until an operation runs.
"""

from __future__ import annotations

import asyncio
import contextvars
import hashlib
import inspect
import json
import statistics
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from clinsynth.config import ConfigError, EndpointSettings, RunConfig, Settings
from clinsynth.runtime import aio
from clinsynth.schemas import ItemRecord, SourceChunk, Task
from clinsynth.tools.models import (
    CorrectLabelsArgs,
    CorrectLabelsResult,
    CritiqueArgs,
    CritiqueResult,
    DifficultyStats,
    FinetuneArgs,
    FinetuneResult,
    GenerateArgs,
    GeneratedItem,
    GenerateResult,
    Passage,
    SearchArgs,
    SearchResult,
    ToolError,
)

if TYPE_CHECKING:
    from clinsynth.graphs.batch import Progress
    from clinsynth.memory.embeddings import Embedder
    from clinsynth.memory.store import VectorStore

ProgressFn = Callable[["Progress"], Awaitable[None] | None]
"""Called with the run's live counters after every finished item (sync or async)."""

DEFAULT_DATA_DIR = Path(".clinsynth")


def _slug(text: str, limit: int = 40) -> str:
    cleaned = "".join(c if c.isalnum() else "-" for c in text.lower())
    return "-".join(p for p in cleaned.split("-") if p)[:limit] or "any"


def summarize_run(run_dir: Path, run: RunConfig | None = None) -> GenerateResult:
    """Read a run directory back into a :class:`GenerateResult`."""
    from clinsynth.runtime.runfiles import RunFiles, read_json, read_run

    files = RunFiles(run_dir)
    records = read_run(files)
    accepted, rejected, surplus = records
    manifest = read_json(files.manifest) if files.manifest.exists() else {}
    run = run or RunConfig.model_validate(manifest.get("run") or {})
    items = [_generated(r) for r in accepted]
    return GenerateResult(
        run_dir=str(run_dir),
        recipe=run.recipe,
        topic=run.topic,
        difficulty_target=run.difficulty,
        accepted=len(accepted),
        rejected=len(rejected),
        surplus=len(surplus),
        acceptance_rate=records.acceptance_rate,
        candidates=len(accepted) + len(rejected) + len(surplus),
        stop_reason=str(manifest.get("stop_reason") or "unknown"),
        detail="",
        tokens=sum(r.provenance.usage.total_tokens for r in accepted + rejected + surplus),
        measured_difficulty=difficulty_stats(items),
        items=items,
    )


def _graded_difficulty(record: ItemRecord) -> float | None:
    """The critic's difficulty score when it was graded (a validated measure), else None."""
    score = record.provenance.critic_scores.get("difficulty")
    reports = [a.report for a in record.history if a.report is not None]
    checks = [c for c in reports[-1].checks if c.name == "difficulty"] if reports else []
    if checks and checks[0].details.get("graded") is False:
        return None
    return score


def _generated(record: ItemRecord) -> GeneratedItem:
    scores = record.provenance.critic_scores
    return GeneratedItem(
        id=record.id,
        item=record.item or {},
        difficulty=_graded_difficulty(record),
        scores=scores,
        attempts=record.provenance.attempts,
        source_ids=record.provenance.source_ids,
        topic=record.task.topic,
    )


def difficulty_stats(items: Sequence[GeneratedItem]) -> DifficultyStats | None:
    """Mean, min and max of the measured difficulty of ``items`` (None when unmeasured)."""
    values = [i.difficulty for i in items if i.difficulty is not None]
    if not values:
        return None
    return DifficultyStats(
        mean=round(statistics.fmean(values), 4),
        min=min(values),
        max=max(values),
        count=len(values),
    )


class ClinsynthToolkit:
    """The operations behind every tool, sharing settings, the embedder and the data dir.

    ``run_defaults`` holds :class:`RunConfig` fields applied to every generation (for
    example ``recipe_options``, ``k`` or ``collection``); ``endpoints`` overrides the
    per-role endpoints that ``settings`` would give.
    """

    def __init__(
        self,
        settings: Settings | None = None,
        *,
        data_dir: Path | str = DEFAULT_DATA_DIR,
        endpoints: dict[str, EndpointSettings] | None = None,
        embedder: Embedder | None = None,
        run_defaults: dict[str, Any] | None = None,
    ) -> None:
        self.settings = settings or Settings()
        self.data_dir = Path(data_dir)
        self.endpoints = endpoints
        self.run_defaults = dict(run_defaults or {})
        self._embedder = embedder
        self._stores: dict[str, VectorStore] = {}

    @property
    def embedder(self) -> Embedder:
        if self._embedder is None:
            from clinsynth.memory.embeddings import make_embedder

            self._embedder = make_embedder(self.settings.embedder)
        return self._embedder

    def store(self, collection: str = "corpus") -> VectorStore:
        """The vector store collection (opened once)."""
        if collection not in self._stores:
            from clinsynth.memory.store import VectorStore

            self._stores[collection] = VectorStore(
                self.settings.store, self.embedder, collection=collection
            )
        return self._stores[collection]

    # -- search ------------------------------------------------------------------------------

    def search(self, args: SearchArgs) -> SearchResult:
        """The ``k`` passages most similar to the query."""
        from clinsynth.memory.store import StoreError

        try:
            chunks = self.store(args.collection).query(args.query, k=args.k)
        except StoreError as exc:
            raise ToolError(str(exc)) from exc
        return SearchResult(
            query=args.query,
            passages=[
                Passage(
                    id=c.id,
                    score=None if c.score is None else round(c.score, 4),
                    source=str(c.metadata.get("source") or c.metadata.get("doc_id") or "") or None,
                    text=c.text,
                )
                for c in chunks
            ],
        )

    # -- generate ----------------------------------------------------------------------------

    def run_config(self, args: GenerateArgs) -> RunConfig:
        """The run configuration of a generation request."""
        data = {
            **self.run_defaults,
            "recipe": args.recipe,
            "n": args.n,
            "topic": args.topic,
            "difficulty": args.difficulty,
            "max_attempts": args.max_attempts,
            "max_concurrency": args.concurrency,
            "seed": args.seed,
        }
        try:
            return RunConfig.model_validate(data)
        except ValueError as exc:
            raise ToolError(f"bad generation request: {exc}") from exc

    def default_run_dir(self, run: RunConfig) -> Path:
        """One directory per distinct request: an identical request resumes the same run."""
        key = hashlib.sha256(json.dumps(run.fingerprint(), sort_keys=True).encode()).hexdigest()
        name = f"{run.recipe}-{_slug(run.topic or 'any')}-{key[:10]}"
        return self.data_dir / "runs" / name

    async def generate(
        self,
        args: GenerateArgs,
        *,
        progress: ProgressFn | None = None,
        avoid: Sequence[Path] = (),
    ) -> GenerateResult:
        """Run the generation graph (retrieve → reason → generate → critic loop) to ``n``
        accepted items or a limit; ``progress`` gets the counters after each finished item;
        the accepted items of the ``avoid`` run directories count as already accepted for
        the critic's near-duplicate check (a conversation's earlier batches).

        The run gets its own thread and event loop: its file, SQLite and store I/O never
        blocks the caller's loop (a LangGraph or MCP server), and its model calls do not
        report to the caller's callbacks. Cancelling the call cancels the run, which
        resumes from its checkpoints when the same request comes again.
        """
        from clinsynth.graphs.batch import Progress as RunProgress

        run = self.run_config(args)
        out_dir = Path(args.out_dir) if args.out_dir else self.default_run_dir(run)
        loop = asyncio.get_running_loop()
        queue: asyncio.Queue[RunProgress | None] = asyncio.Queue()
        inner: dict[str, Any] = {}

        def report(p: RunProgress) -> None:
            loop.call_soon_threadsafe(queue.put_nowait, p.model_copy(deep=True))

        async def pump() -> None:
            assert progress is not None
            while (p := await queue.get()) is not None:
                outcome = progress(p)
                if inspect.isawaitable(outcome):
                    await outcome

        async def work() -> GenerateResult:
            inner["loop"], inner["task"] = asyncio.get_running_loop(), asyncio.current_task()
            return await self._run(run, out_dir, report, avoid)

        def in_thread() -> GenerateResult:
            return contextvars.Context().run(aio.run, work())

        pump_task = asyncio.create_task(pump()) if progress else None
        try:
            return await loop.run_in_executor(None, in_thread)
        except asyncio.CancelledError:
            if "task" in inner:
                inner["loop"].call_soon_threadsafe(inner["task"].cancel)
            raise
        finally:
            if pump_task is not None:
                queue.put_nowait(None)
                await pump_task

    async def _run(
        self,
        run: RunConfig,
        out_dir: Path,
        report: Callable[[Progress], None],
        avoid: Sequence[Path],
    ) -> GenerateResult:
        """Build the run's live objects and run the batch (in the run's own loop)."""
        from clinsynth.graphs.batch import BatchRunner, RunAborted
        from clinsynth.graphs.factory import build_deps
        from clinsynth.llm import LLMError
        from clinsynth.memory.store import StoreError
        from clinsynth.runtime.runfiles import RunFileError, RunFiles, read_records

        try:
            deps, meter = build_deps(
                self.settings,
                run,
                endpoints=self.endpoints,
                embedder=self.embedder,
                cache_path=out_dir / "reasoning_cache.sqlite",
            )
            if deps.store.count() == 0:
                raise ToolError(
                    f"collection '{run.collection}' at {self.settings.store} is empty — "
                    "run `clinsynth ingest PATH` first"
                )
            earlier = [r for d in avoid for r in read_records(RunFiles(d).accepted) if r.item]
            deps.registry.add_many(
                (r.id, deps.recipe.text_for_similarity(r.item or {})) for r in earlier
            )
            summary = await BatchRunner(deps, out_dir, on_progress=report, meter=meter).run()
            result = summarize_run(out_dir, run)
        except (ConfigError, StoreError, LLMError, RunAborted, RunFileError) as exc:
            raise ToolError(str(exc)) from exc
        return result.model_copy(
            update={
                "stop_reason": summary.stop_reason,
                "detail": summary.detail,
                "candidates": summary.candidates,
            }
        )

    # -- critique ----------------------------------------------------------------------------

    def critique(self, args: CritiqueArgs) -> CritiqueResult:
        """Run the recipe's measurable checks and the privacy and injection checks on one item."""
        from pydantic import ValidationError

        from clinsynth.recipes import get_recipe
        from clinsynth.schemas import CriticReport

        try:
            recipe = get_recipe(args.recipe, self.run_defaults.get("recipe_options"))
            draft = recipe.item_model.model_validate(args.item)
        except (ConfigError, ValidationError) as exc:
            raise ToolError(f"bad item for recipe '{args.recipe}': {exc}") from exc
        task = Task(id="critique-0", index=0, recipe=recipe.name, difficulty=args.difficulty)
        chunks = [SourceChunk(id="context", text=args.context)]
        item = recipe.finalize(task, draft, chunks)
        checks = recipe.checks(task, item, chunks)
        checks.extend(recipe.safety_checks(item))
        report = CriticReport.from_checks(checks)
        return CritiqueResult(
            verdict=report.verdict, reasons=report.reasons, checks=report.checks, item=item
        )

    # -- labels ------------------------------------------------------------------------------

    def correct_labels(self, args: CorrectLabelsArgs) -> CorrectLabelsResult:
        """Flag (or fix, per ``policy``) labels a cross-validated classifier disagrees with."""
        if len(args.texts) != len(args.labels):
            raise ToolError(f"{len(args.texts)} texts but {len(args.labels)} labels")
        from clinsynth.tools.labels import correct_labels

        try:
            decisions = correct_labels(
                args.texts,
                args.labels,
                policy=args.policy,
                method=args.method,
                backbone=args.backbone,
                folds=args.folds,
                seed=args.seed,
            )
        except ValueError as exc:
            raise ToolError(str(exc)) from exc
        rows = [d.model_dump(mode="json") for d in decisions]
        return CorrectLabelsResult(
            flagged=sum(bool(r.get("flagged")) for r in rows),
            changed=sum(r.get("new_label") != r.get("old_label") for r in rows),
            decisions=rows,
        )

    # -- fine-tune ---------------------------------------------------------------------------

    def finetune(self, args: FinetuneArgs) -> FinetuneResult:
        """Fine-tune on ``train`` once per seed, score on ``eval``, report mean ± sd."""
        from clinsynth.tools.training import finetune_evaluate

        return finetune_evaluate(args)


__all__ = [
    "DEFAULT_DATA_DIR",
    "ClinsynthToolkit",
    "ProgressFn",
    "difficulty_stats",
    "summarize_run",
]
