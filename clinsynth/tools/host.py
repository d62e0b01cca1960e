"""The clinsynth core as tools for host apps: LangChain tools, the MCP server and the chat agent.

:class:`ClinsynthToolkit` holds the settings and the data directory and exposes five
operations, each taking and returning a pydantic model: search the corpus, generate items
through the critic loop, critique one item, correct labels, fine-tune and evaluate.
:func:`as_tools` wraps them as LangChain ``StructuredTool`` objects. Nothing is built until a
tool runs: importing this module touches neither the network nor the disk. The module sits
with the tools but drives the graphs; those imports wait until a tool runs.
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
from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from clinsynth import aio
from clinsynth.config import ConfigError, EndpointSettings, RunConfig, Settings, one_line
from clinsynth.schemas import CheckResult, ItemRecord, SourceChunk, Task, Verdict

if TYPE_CHECKING:
    from langchain_core.tools import BaseTool

    from clinsynth.graphs.batch import Progress
    from clinsynth.memory.embeddings import Embedder
    from clinsynth.memory.store import VectorStore

ProgressFn = Callable[["Progress"], Awaitable[None] | None]
"""Called with the run's live counters after every finished item (sync or async)."""

DEFAULT_DATA_DIR = Path(".clinsynth")


class ToolError(RuntimeError):
    """A tool could not do what it was asked; the message is one line meant for the caller."""


# --- argument and result models ----------------------------------------------------------


class SearchArgs(BaseModel):
    """Arguments of ``search_corpus``."""

    model_config = ConfigDict(extra="forbid")

    query: str = Field(min_length=1, description="what to look for in the ingested corpus")
    k: int = Field(default=5, ge=1, le=50, description="passages to return")
    collection: str = Field(default="corpus", description="collection name in the store")


class Passage(BaseModel):
    """One retrieved passage."""

    id: str
    score: float | None
    source: str | None = None
    text: str


class SearchResult(BaseModel):
    """What ``search_corpus`` found, best first."""

    query: str
    passages: list[Passage]


def check_difficulty(value: str | None) -> str | None:
    """Validate a difficulty target (a band name, a minimum, or ``lo-hi``)."""
    from clinsynth.evaluators.difficulty import parse_band

    parse_band(value)
    return value


class GenerateArgs(BaseModel):
    """Arguments of ``generate_items``."""

    model_config = ConfigDict(extra="forbid")

    topic: str | None = Field(default=None, description="retrieve passages about this topic")
    n: int = Field(default=5, ge=1, le=500, description="accepted items wanted")
    difficulty: str | None = Field(
        default=None,
        description="target difficulty: easy, medium, hard, a minimum such as 0.7, or lo-hi",
    )
    recipe: str = Field(default="qa", description="generation recipe")
    max_attempts: int = Field(default=3, ge=1, le=10, description="generator attempts per item")
    concurrency: int = Field(
        default=4,
        ge=1,
        le=64,
        description="LLM requests in flight at once (an endpoint gets 2x as many items)",
    )
    seed: int = Field(
        default=0, description="run seed; change it for different items on the same ask"
    )
    out_dir: str | None = Field(
        default=None,
        description="run directory; default: one per distinct request under the data dir "
        "(so an identical request resumes and returns the same run)",
    )

    @field_validator("difficulty")
    @classmethod
    def _known_band(cls, value: str | None) -> str | None:
        return check_difficulty(value)


class DifficultyStats(BaseModel):
    """Measured difficulty (the critic's ``difficulty`` score) over accepted items."""

    mean: float
    min: float
    max: float
    count: int


class GeneratedItem(BaseModel):
    """One accepted item with the critic's measurements."""

    id: str
    item: dict[str, Any]
    difficulty: float | None = Field(description="measured by the critic (0 easy … 1 hard)")
    scores: dict[str, float] = Field(description="every critic check's score")
    attempts: int
    source_ids: list[str]
    topic: str | None = None


class GenerateResult(BaseModel):
    """What ``generate_items`` produced."""

    run_dir: str
    recipe: str
    topic: str | None
    difficulty_target: str | None
    accepted: int
    rejected: int
    surplus: int = Field(
        default=0, description="stopped or set aside because the target was reached first"
    )
    acceptance_rate: float | None = Field(
        default=None, description="accepted / (accepted + rejected); surplus items not counted"
    )
    candidates: int
    stop_reason: str
    detail: str
    tokens: int
    measured_difficulty: DifficultyStats | None
    items: list[GeneratedItem]


class CritiqueArgs(BaseModel):
    """Arguments of ``critique_item``."""

    model_config = ConfigDict(extra="forbid")

    item: dict[str, Any] = Field(
        description="the item as the recipe's generator writes it (qa: question and answer)"
    )
    context: str = Field(min_length=1, description="the passage the item is grounded in")
    recipe: str = Field(default="qa", description="recipe whose checks apply")
    difficulty: str | None = Field(
        default=None, description="target difficulty band the difficulty check uses (default: any)"
    )

    @field_validator("difficulty")
    @classmethod
    def _known_band(cls, value: str | None) -> str | None:
        return check_difficulty(value)


class CritiqueResult(BaseModel):
    """The critic's report on one item: reasons first, then the verdict."""

    verdict: Verdict
    reasons: list[str]
    checks: list[CheckResult]
    item: dict[str, Any] = Field(description="the item as the recipe stores it")


class CorrectLabelsArgs(BaseModel):
    """Arguments of ``correct_labels``."""

    model_config = ConfigDict(extra="forbid")

    texts: list[str] = Field(min_length=2, description="the texts")
    labels: list[str] = Field(min_length=2, description="their given labels, in the same order")
    policy: Literal["flag", "relabel", "drop"] = Field(
        default="flag", description="flag suspect labels, relabel them, or drop the items"
    )
    method: Literal["ours", "cleanlab", "argmax"] = Field(
        default="ours", description="how suspect labels are detected"
    )
    backbone: str | None = Field(
        default=None,
        description="minilm (default: frozen sentence embeddings), hashing (instant, low "
        "quality), or a BERT name / local directory fine-tuned in every fold (slow)",
    )
    folds: int = Field(default=5, ge=2, le=20, description="cross-validation folds")
    seed: int = 0


class CorrectLabelsResult(BaseModel):
    """One decision per input text."""

    flagged: int
    changed: int
    decisions: list[dict[str, Any]]


class FinetuneArgs(BaseModel):
    """Arguments of ``finetune_evaluate``."""

    model_config = ConfigDict(extra="forbid")

    task: Literal["classification", "qa"] = Field(
        description="sequence classification or extractive QA"
    )
    train: str = Field(
        description="training data: a run directory, an accepted.jsonl, a JSONL file, or "
        "(qa) a SQuAD JSON file"
    )
    eval: str = Field(description="evaluation data, same formats")
    text_field: str = Field(
        default="text", description="classification: text field of each row/item"
    )
    label_field: str = Field(
        default="label", description="classification: label field of each row/item"
    )
    backbone: str | None = Field(
        default=None, description="model name or local path (default BioBERT)"
    )
    epochs: float = Field(default=2.0, gt=0)
    max_steps: int | None = Field(default=None, ge=1, description="overrides epochs when set")
    max_length: int | None = Field(default=None, ge=16, le=512, description="tokens per input")
    seeds: list[int] = Field(default_factory=lambda: [0, 1, 2], min_length=1)


class FinetuneResult(BaseModel):
    """Metrics per seed and their mean ± sd."""

    task: str
    backbone: str
    fell_back: bool
    n_train: int
    n_eval: int
    runs: list[dict[str, Any]]
    summary: dict[str, Any]


# --- the toolkit ---------------------------------------------------------------------------


def _slug(text: str, limit: int = 40) -> str:
    cleaned = "".join(c if c.isalnum() else "-" for c in text.lower())
    return "-".join(p for p in cleaned.split("-") if p)[:limit] or "any"


def summarize_run(run_dir: Path, run: RunConfig | None = None) -> GenerateResult:
    """Read a run directory back into a :class:`GenerateResult`."""
    from clinsynth.tools.io import RunFiles, read_json, read_run

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


def _generated(record: ItemRecord) -> GeneratedItem:
    scores = record.provenance.critic_scores
    return GeneratedItem(
        id=record.id,
        item=record.item or {},
        difficulty=scores.get("difficulty"),
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
        from clinsynth.tools.io import RunFileError, RunFiles, read_records

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
        from clinsynth.tools import finetune as ft

        try:
            if args.task == "classification":
                return self._finetune_classifier(args, ft)
            return self._finetune_reader(args, ft)
        except (ft.FinetuneError, ValueError) as exc:
            raise ToolError(str(exc)) from exc

    def _finetune_classifier(self, args: FinetuneArgs, ft: Any) -> FinetuneResult:
        train = _pairs(Path(args.train), args.text_field, args.label_field)
        held = _pairs(Path(args.eval), args.text_field, args.label_field)
        extra = {"max_length": args.max_length} if args.max_length else {}
        results: list[Any] = []

        def one(seed: int) -> dict[str, Any]:
            cfg = ft.ClassificationConfig(
                backbone=args.backbone,
                epochs=args.epochs,
                max_steps=args.max_steps,
                seed=seed,
                labels=sorted({y for _, y in train + held}),
                **extra,
            )
            result = ft.train_classifier(train, held, cfg)
            results.append(result.backbone)
            return {k: v for k, v in (result.metrics or {}).items() if _is_number(v)}

        report = ft.run_seeds(one, args.seeds)
        return FinetuneResult(
            task=args.task,
            backbone=results[0].path_or_name,
            fell_back=results[0].fell_back,
            n_train=len(train),
            n_eval=len(held),
            runs=report["runs"],
            summary=report["summary"],
        )

    def _finetune_reader(self, args: FinetuneArgs, ft: Any) -> FinetuneResult:
        train = _qa_examples(Path(args.train), ft)
        held = _qa_examples(Path(args.eval), ft)
        extra = {"max_length": args.max_length} if args.max_length else {}
        backbones: list[Any] = []

        def one(seed: int) -> dict[str, Any]:
            cfg = ft.QAConfig(
                backbone=args.backbone,
                epochs=args.epochs,
                max_steps=args.max_steps,
                seed=seed,
                **extra,
            )
            reader = ft.train_reader(train, cfg)
            backbones.append(reader.backbone)
            scores = ft.qa_scores(reader.predict(held), held)
            return {k: v for k, v in scores.items() if _is_number(v)}

        report = ft.run_seeds(one, args.seeds)
        backbone = backbones[0]
        return FinetuneResult(
            task=args.task,
            backbone=backbone.path_or_name if backbone else str(args.backbone),
            fell_back=bool(backbone and backbone.fell_back),
            n_train=len(train),
            n_eval=len(held),
            runs=report["runs"],
            summary=report["summary"],
        )


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _rows(path: Path) -> list[dict[str, Any]]:
    """JSONL rows of a file, or of ``accepted.jsonl`` in a run directory."""
    from clinsynth.tools.io import RunFileError, iter_jsonl

    file = path / "accepted.jsonl" if path.is_dir() else path
    if not file.is_file():
        raise ToolError(f"data file not found: {file}")
    try:
        return list(iter_jsonl(file, whole_last_line=not path.is_dir()))
    except RunFileError as exc:
        raise ToolError(str(exc)) from exc


def _pairs(path: Path, text_field: str, label_field: str) -> list[tuple[str, str]]:
    """(text, label) pairs from plain rows or from item records (fields looked up in ``item``);
    a blank/NaN/None label is an error naming the row."""
    from clinsynth.tools.tables import TableError, check_label

    pairs = []
    for i, row in enumerate(_rows(path)):
        item = row.get("item")
        data: dict[str, Any] = item if isinstance(item, dict) else row
        if text_field not in data or label_field not in data:
            raise ToolError(f"{path} row {i} lacks '{text_field}' or '{label_field}'")
        try:
            label = check_label(data[label_field], f"{path} row {i}", label_field)
        except TableError as exc:
            raise ToolError(str(exc)) from exc
        pairs.append((str(data[text_field]), label))
    return pairs


def _qa_examples(path: Path, ft: Any) -> list[Any]:
    """QA examples from a SQuAD JSON file, a run's item records, or plain QAExample rows."""
    if path.suffix == ".json":
        return list(ft.load_squad_json(path))
    examples = []
    for i, row in enumerate(_rows(path)):
        item = row.get("item")
        if isinstance(item, dict):
            answerable = bool(item.get("answerable")) and item.get("answer_start") is not None
            examples.append(
                ft.QAExample(
                    id=str(row.get("id", i)),
                    question=item["question"],
                    context=item["context"],
                    answer_text=item["answer"] if answerable else None,
                    answer_start=item["answer_start"] if answerable else None,
                )
            )
        else:
            examples.append(ft.QAExample.model_validate({"id": str(i), **row}))
    return examples


# --- LangChain tools -----------------------------------------------------------------------

TOOL_DESCRIPTIONS: dict[str, str] = {
    "search_corpus": "Search the ingested clinical corpus; returns the most similar passages.",
    "generate_items": (
        "Generate synthetic training items through the agent graph (retrieve, reason, "
        "generate, critic loop); returns the accepted items with their measured scores."
    ),
    "critique_item": (
        "Run the critic's measurable checks (overlap, answer validity, difficulty, privacy, "
        "injection) on one item; returns the verdict and the reasons."
    ),
    "correct_labels": (
        "Find texts whose given label a cross-validated classifier disagrees with; flags "
        "or fixes them per the policy."
    ),
    "finetune_evaluate": (
        "Fine-tune a BERT model (classification or extractive QA) on a training file and "
        "report evaluation metrics over seeds (mean ± sd)."
    ),
}


def _tool_exception(exc: ToolError) -> Exception:
    """LangChain's marker for an error the model should read (``handle_tool_error``)."""
    from langchain_core.tools import ToolException

    return ToolException(str(exc))


def _tool_error_text(exc: Exception) -> str:
    return f"error: {exc}"


def _validation_error_text(exc: Any) -> str:
    from pydantic import ValidationError

    return f"error: bad arguments: {one_line(exc) if isinstance(exc, ValidationError) else exc}"


def _sync(toolkit_call: Callable[[Any], BaseModel], model: type[BaseModel]) -> Callable[..., str]:
    def run(**kwargs: Any) -> str:
        try:
            return toolkit_call(model(**kwargs)).model_dump_json()
        except ToolError as exc:
            raise _tool_exception(exc) from exc

    return run


def _async(
    toolkit_call: Callable[[Any], BaseModel], model: type[BaseModel]
) -> Callable[..., Awaitable[str]]:
    async def run(**kwargs: Any) -> str:
        try:
            result = await asyncio.to_thread(toolkit_call, model(**kwargs))
        except ToolError as exc:
            raise _tool_exception(exc) from exc
        return result.model_dump_json()

    return run


def as_tools(
    toolkit: ClinsynthToolkit | None = None,
    *,
    settings: Settings | None = None,
    data_dir: Path | str = DEFAULT_DATA_DIR,
    include: Sequence[str] | None = None,
    progress: ProgressFn | None = None,
) -> list[BaseTool]:
    """LangChain tools over the clinsynth core, with pydantic argument schemas.

    Each returns its result model as JSON text; user-fixable failures (empty store, bad
    difficulty, unreachable endpoint) come back to the model as the tool's error message.
    ``include`` picks tools by name (default: all of :data:`TOOL_DESCRIPTIONS`);
    ``progress`` is called as generation advances.
    """
    from langchain_core.tools import StructuredTool

    tk = toolkit or ClinsynthToolkit(settings, data_dir=data_dir)

    async def generate_async(**kwargs: Any) -> str:
        try:
            result = await tk.generate(GenerateArgs(**kwargs), progress=progress)
        except ToolError as exc:
            raise _tool_exception(exc) from exc
        return result.model_dump_json()

    def generate_sync(**kwargs: Any) -> str:
        return aio.run(generate_async(**kwargs))

    specs: dict[str, tuple[type[BaseModel], Callable[..., Any], Callable[..., Any]]] = {
        "search_corpus": (SearchArgs, _sync(tk.search, SearchArgs), _async(tk.search, SearchArgs)),
        "generate_items": (GenerateArgs, generate_sync, generate_async),
        "critique_item": (
            CritiqueArgs,
            _sync(tk.critique, CritiqueArgs),
            _async(tk.critique, CritiqueArgs),
        ),
        "correct_labels": (
            CorrectLabelsArgs,
            _sync(tk.correct_labels, CorrectLabelsArgs),
            _async(tk.correct_labels, CorrectLabelsArgs),
        ),
        "finetune_evaluate": (
            FinetuneArgs,
            _sync(tk.finetune, FinetuneArgs),
            _async(tk.finetune, FinetuneArgs),
        ),
    }
    names = list(include) if include is not None else list(specs)
    unknown = sorted(set(names) - set(specs))
    if unknown:
        raise ValueError(f"unknown tool(s) {unknown}; available: {sorted(specs)}")
    return [
        StructuredTool.from_function(
            func=specs[name][1],
            coroutine=specs[name][2],
            name=name,
            description=TOOL_DESCRIPTIONS[name],
            args_schema=specs[name][0],
            handle_tool_error=_tool_error_text,
            handle_validation_error=_validation_error_text,
        )
        for name in names
    ]


__all__ = [
    "TOOL_DESCRIPTIONS",
    "ClinsynthToolkit",
    "CorrectLabelsArgs",
    "CorrectLabelsResult",
    "CritiqueArgs",
    "CritiqueResult",
    "DifficultyStats",
    "FinetuneArgs",
    "FinetuneResult",
    "GenerateArgs",
    "GenerateResult",
    "GeneratedItem",
    "Passage",
    "SearchArgs",
    "SearchResult",
    "ToolError",
    "as_tools",
    "difficulty_stats",
    "summarize_run",
]
