"""The genome: the agent's editable definition (settings, policy, prompts, skills, and from
format version 2 Python tools and loop hooks).

It lives in `.evoagent/agent/` (a git repository of its own, copied from the packaged
`.agent-template/` by `init_genome`). Loading validates all of it up front, so a broken
genome fails with one line naming the file and the problem, never halfway through a run.
Genome code is only read here (parsed, its literal SCHEMA evaluated), never executed: it
runs in the sandbox through `genome_code.py`.
"""

from __future__ import annotations

import ast
import importlib.util
import os
import re
import shutil
import subprocess
import tomllib
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cache
from pathlib import Path, PurePosixPath
from typing import Any, TypeVar

from pydantic import BaseModel, Field, ValidationError, field_validator

from .errors import EvoError
from .mcp_config import SERVER_NAME

SUPPORTED_VERSIONS = (1, 2)
CODE_VERSION = 2
"""The first format version with Python tools (`tools/`) and loop hooks (`hooks/`)."""
PROMPTS = ("system", "task", "refine", "commit_message")
LATER_PROMPTS = ("turn", "compact")
"""Prompts added after genomes existed: a genome without one renders the packaged template's
(`render_template_prompt`), never an error."""
HOOK_POINTS = ("before_step", "failure_digest", "stop")
"""Where the loop calls a genome hook (`hooks/<point>.py`); see .agent-template/README.md."""
_CODE_NAME = re.compile(r"[a-z][a-z0-9_]*")

TEMPLATE_VARS: dict[str, frozenset[str]] = {
    # `conversation` came later (true in the app and ACP, false in headless fix).
    "system": frozenset({"tools", "tool_protocol", "project_instructions", "skills", "repo_map",
                         "conversation"}),
    "task": frozenset(
        {"issue", "locate_hits", "recall_hits", "require_reproduction", "test_command"}
    ),
    # `situation` came later: a template written before it simply does not use it.
    "refine": frozenset({"attempt", "max_attempts", "situation", "digest", "diff_since_last"}),
    "commit_message": frozenset({"issue", "diff_stat"}),
    # A later request in the same conversation (a follow-up, a question, or /ask).
    "turn": frozenset({"request", "read_only", "locate_hits", "recall_hits", "pending_files",
                       "test_command"}),
    # The instruction that asks a model to summarize older turns (context compaction).
    "compact": frozenset({"transcript"}),
}
"""The kernel's contract with each prompt: the variables it passes. A template that uses any
other variable fails at load time, not mid-run."""

GENOME_IDENTITY = ("evoagent", "evoagent@localhost")
ANY_SERVER = "*"
"""In `mcp_servers` / `mcp_network`: every MCP server."""
_MCP_TOOL = re.compile(r"[A-Za-z0-9_-]{1,61}")
"""The tool part of `server__tool` (model APIs take 64 characters for the whole name)."""

_M = TypeVar("_M", bound=BaseModel)


class GenomeError(EvoError):
    def __init__(self, path: Path | str, problem: str):
        self.path = Path(path)
        self.problem = " ".join(problem.split())
        super().__init__(f"{path}: {self.problem}")


class LoopSettings(BaseModel, extra="forbid"):
    max_steps: int = Field(default=60, ge=1)
    """Model turns per attempt before the loop stops."""
    max_cost_usd: float = Field(default=3.0, ge=0)
    """Dollar cap for the whole session (all attempts); 0 means no cap."""
    max_seconds: float = Field(default=1800, gt=0)
    """Wall-time cap for the whole session."""
    refine_attempts: int = Field(default=2, ge=0)
    """How many times the kernel hands failing tests back to the agent after `finish`."""
    require_reproduction: bool = True
    """When no test covers the issue, the agent must first write a failing reproducing test."""


class ToolSettings(BaseModel, extra="forbid"):
    enabled: list[str] = Field(default_factory=list)
    """Registry names of the tools the agent may call (filtered through policy.toml)."""
    mcp_disabled: list[str] = Field(default_factory=list)
    """MCP tools the agent does not use: a whole server (`docs`, not even started) or one
    tool (`docs__delete`). MCP tools are not listed in `enabled`: which exist depends on the
    person's servers, so every tool the policy lets run is offered unless named here."""

    @field_validator("mcp_disabled")
    @classmethod
    def _mcp_names(cls, names: list[str]) -> list[str]:
        for name in names:
            server, _, tool = name.partition("__")
            if not SERVER_NAME.fullmatch(server) or (tool == "") != ("__" not in name) or (
                    tool and not _MCP_TOOL.fullmatch(tool)):
                raise ValueError(f"{name!r} is neither an MCP server name nor server__tool")
        return names

    def uses_mcp(self, name: str) -> bool:
        """Whether the MCP server or `server__tool` called `name` is not disabled here."""
        return name not in self.mcp_disabled and name.split("__", 1)[0] not in self.mcp_disabled


class ModelRoles(BaseModel, extra="forbid"):
    main: str = ""
    """litellm model for the coding agent; empty uses the configured model."""
    meta: str = ""
    """Model for the meta agent that evolves the genome; empty uses the configured model."""
    summarize: str = ""
    """Optional cheap model for digests and summaries; empty falls back to `main`."""

    def resolve(self, role: str, configured: str) -> str:
        """The model name for `role`, falling back to `main`, then to `configured`."""
        value = getattr(self, role)
        if not value and role == "summarize":
            value = self.main
        return value or configured


class OutputSettings(BaseModel, extra="forbid"):
    tool_output_chars: int = Field(default=12_000, ge=500)
    """Characters of one tool result the model sees (head and tail are kept)."""


class AgentSettings(BaseModel, extra="forbid"):
    version: int
    """Genome format version (see SUPPORTED_VERSIONS)."""
    loop: LoopSettings = Field(default_factory=LoopSettings)
    """Loop limits and the self-refinement budget."""
    tools: ToolSettings = Field(default_factory=ToolSettings)
    """Which tools are enabled."""
    models: ModelRoles = Field(default_factory=ModelRoles)
    """Model per role."""
    output: OutputSettings = Field(default_factory=OutputSettings)
    """Bounds on what the model is shown."""


class Policy(BaseModel, extra="forbid"):
    version: int = 1
    """Policy format version."""
    tools: list[str] = Field(default_factory=list)
    """Tools that may run at all."""
    network: bool = False
    """Whether sandboxed commands get network access."""
    writable: list[str] = Field(default_factory=lambda: ["**"])
    """Globs (relative to the repo root) the agent may write; `**` crosses directories."""
    protected: list[str] = Field(default_factory=list)
    """Globs the agent may never write, even when `writable` matches."""
    genome_code: bool = False
    """Whether the genome's Python tools and hooks may run at all (in the sandbox). Off when
    absent: a policy written before genome code existed never allowed it."""
    mcp: bool = False
    """Whether the person's MCP servers (and the repository's they approved) are offered as
    tools in conversations at all. Off when absent; turning it on is a loosening only a
    person makes."""
    mcp_servers: list[str] = Field(default_factory=lambda: [ANY_SERVER])
    """Which of those servers may run (when `mcp` is on): names, or "*" for every one. Absent:
    every one (a policy written before this list existed had only `mcp`)."""
    mcp_network: list[str] = Field(default_factory=list)
    """Servers whose sandbox keeps the network even when `network` is false (names, or "*");
    every other server follows `network`."""

    @field_validator("mcp_servers", "mcp_network")
    @classmethod
    def _server_names(cls, names: list[str]) -> list[str]:
        for name in names:
            if name != ANY_SERVER and not SERVER_NAME.fullmatch(name):
                raise ValueError(f"{name!r} is not an MCP server name (1-32 letters, digits, "
                                 "'-' or single '_') or \"*\"")
        return names

    def allows_tool(self, name: str) -> bool:
        return name in self.tools

    def allows_mcp_server(self, name: str) -> bool:
        """Whether MCP server `name` may run (MCP on, and the server in `mcp_servers`)."""
        return self.mcp and _named(self.mcp_servers, name)

    def mcp_server_network(self, name: str) -> bool:
        """Whether MCP server `name`'s sandbox keeps the network."""
        return self.network or _named(self.mcp_network, name)

    def allows_write(self, rel_path: str) -> bool:
        path = PurePosixPath(rel_path.replace("\\", "/")).as_posix()

        def matches(globs: list[str]) -> bool:
            return any(_glob_regex(g).fullmatch(path) for g in globs)

        return matches(self.writable) and not matches(self.protected)

    def loosenings(self, candidate: Policy) -> list[str]:
        """How `candidate` would be looser than this policy (empty when it only tightens)."""
        found = [f"tool {t!r} added" for t in candidate.tools if t not in self.tools]
        if candidate.network and not self.network:
            found.append("network turned on")
        found += [f"writable {g!r} added" for g in candidate.writable if g not in self.writable]
        found += [f"protected {g!r} removed" for g in self.protected if g not in candidate.protected]
        if candidate.genome_code and not self.genome_code:
            found.append("genome code turned on")
        if candidate.mcp and not self.mcp:
            found.append("MCP servers turned on")
        found += [f"{_server(n)} allowed" for n in candidate.mcp_servers
                  if not _named(self.mcp_servers, n)]
        found += [f"network for {_server(n)} added" for n in candidate.mcp_network
                  if not _named(self.mcp_network, n)]
        return found


def _named(names: list[str], name: str) -> bool:
    """Whether a list of MCP server names (or "*") covers `name` ("*" only by "*")."""
    return name in names or ANY_SERVER in names


def _server(name: str) -> str:
    return "every MCP server ('*')" if name == ANY_SERVER else f"MCP server {name!r}"


@cache
def _glob_regex(glob: str) -> re.Pattern[str]:
    out, i = [], 0
    while i < len(glob):
        if glob.startswith("**/", i):
            out.append("(?:.*/)?")
            i += 3
        elif glob.startswith("**", i):
            out.append(".*")
            i += 2
        elif glob[i] == "*":
            out.append("[^/]*")
            i += 1
        elif glob[i] == "?":
            out.append("[^/]")
            i += 1
        else:
            out.append(re.escape(glob[i]))
            i += 1
    # DOTALL: a file name may hold a newline, and `**` must still cover it.
    return re.compile("".join(out), re.DOTALL)


@dataclass(frozen=True)
class Skill:
    name: str
    description: str
    text: str


@dataclass(frozen=True)
class CodeTool:
    """A genome tool (`tools/<name>.py`): its file and the SCHEMA read from it statically."""

    name: str
    path: Path
    schema: dict[str, Any]

    @property
    def description(self) -> str:
        return str(self.schema["description"])

    @property
    def parameters(self) -> dict[str, Any]:
        return self.schema["parameters"]


class Genome:
    def __init__(
        self,
        path: Path,
        settings: AgentSettings,
        policy: Policy,
        skills: dict[str, Skill],
        code_tools: dict[str, CodeTool] | None = None,
        hooks: dict[str, Path] | None = None,
    ):
        self.path = path
        self.settings = settings
        self.policy = policy
        self.skills = skills
        self.code_tools = code_tools or {}
        """Python tools by name; empty unless `code_enabled`."""
        self.hooks = hooks or {}
        """Hook files by point (HOOK_POINTS); empty unless `code_enabled`."""
        self._env = _environment(path)

    @classmethod
    def load(cls, path: Path) -> Genome:
        path = Path(path)
        if not path.is_dir():
            raise GenomeError(path, "no genome here (run `evoagent init`)")
        settings = _model(AgentSettings, path / "agent.toml")
        policy = _model(Policy, path / "policy.toml")
        has_code = settings.version >= CODE_VERSION
        # A genome tool may be listed in [tools] enabled whether or not the policy lets it run.
        own = [p.stem for p in tool_files(path)] if has_code else []
        _check_tools(path / "agent.toml", "[tools] enabled", settings.tools.enabled, own)
        _check_tools(path / "policy.toml", "tools", policy.tools)
        code_tools, hooks = {}, {}
        if has_code and policy.genome_code:  # otherwise the code is ignored, not even parsed
            code_tools = {t.name: t for t in map(load_code_tool, tool_files(path))}
            hooks = _load_hooks(path)
        genome = cls(path, settings, policy, _load_skills(path / "skills"), code_tools, hooks)
        genome._check_templates()
        return genome

    @property
    def code_enabled(self) -> bool:
        """Whether this genome's Python tools and hooks run: format 2 and the policy says so."""
        return self.settings.version >= CODE_VERSION and self.policy.genome_code

    @property
    def tools(self) -> list[str]:
        """Enabled tools that may run, in agent.toml order: built-ins the policy allows, and
        the genome's own tools when genome code is on."""
        return [
            t for t in self.settings.tools.enabled
            if self.policy.allows_tool(t) or t in self.code_tools
        ]

    def skills_index(self) -> list[dict[str, str]]:
        return [{"name": s.name, "description": s.description} for s in self.skills.values()]

    def has_prompt(self, template_name: str) -> bool:
        """True when the genome has this prompt file (see LATER_PROMPTS)."""
        return (self.path / _template_rel(template_name)).is_file()

    def render(self, template_name: str, **variables: Any) -> str:
        """Render a prompt (`system`, or a path such as `meta/propose.j2`), stripped."""
        import jinja2

        rel = _template_rel(template_name)
        if not (self.path / rel).is_file():
            if rel in {_template_rel(p) for p in LATER_PROMPTS}:
                return render_template_prompt(template_name, **variables)
            raise GenomeError(self.path / rel, "missing prompt file")
        template = self._env.get_template(rel)
        try:
            return template.render(**variables).strip()
        except jinja2.UndefinedError as exc:
            where = _render_line(exc, template.filename)
            raise GenomeError(self.path / rel, f"render error{where}: {exc.message}") from exc

    def _check_templates(self) -> None:
        import jinja2
        from jinja2 import meta

        names = [_template_rel(p) for p in PROMPTS]
        for folder in ("prompts", "meta"):
            names += sorted(
                p.relative_to(self.path).as_posix()
                for p in (self.path / folder).glob("**/*.j2")
                if p.relative_to(self.path).as_posix() not in names
            )
        for rel in names:
            file = self.path / rel
            if not file.is_file():
                raise GenomeError(file, "missing prompt file")
            try:
                source = file.read_text(encoding="utf-8")
                ast = self._env.parse(source, rel, str(file))
                self._env.get_template(rel)
            except jinja2.TemplateSyntaxError as exc:
                raise GenomeError(file, f"template syntax error at line {exc.lineno}: {exc.message}") from exc
            except UnicodeDecodeError as exc:
                raise GenomeError(file, "not UTF-8 text") from exc
            allowed = TEMPLATE_VARS.get(Path(rel).stem) if rel.startswith("prompts/") else None
            if allowed is not None:
                unknown = sorted(meta.find_undeclared_variables(ast) - allowed)
                if unknown:
                    raise GenomeError(
                        file,
                        f"unknown variable {unknown[0]!r} (available: {', '.join(sorted(allowed))})",
                    )


def _template_rel(name: str) -> str:
    rel = name if "/" in name else f"prompts/{name}"
    return rel if rel.endswith(".j2") else f"{rel}.j2"


def _environment(root: Path) -> Any:
    import jinja2

    return jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(root)),
        undefined=jinja2.StrictUndefined,
        keep_trailing_newline=True,
        autoescape=False,
    )


def _render_line(exc: BaseException, filename: str | None) -> str:
    """' at line N' from the traceback jinja2 rewrites to point into the template."""
    line = None
    tb = exc.__traceback__
    while tb is not None:
        if filename and tb.tb_frame.f_code.co_filename == filename:
            line = tb.tb_lineno
        tb = tb.tb_next
    return f" at line {line}" if line else ""


def _read_toml(file: Path) -> dict[str, Any]:
    if not file.is_file():
        raise GenomeError(file, "missing file")
    try:
        return tomllib.loads(file.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as exc:
        raise GenomeError(file, f"invalid TOML: {exc}") from exc
    except UnicodeDecodeError as exc:
        raise GenomeError(file, "not UTF-8 text") from exc


def _model(model: type[_M], file: Path) -> _M:
    data = _read_toml(file)
    version = data.get("version")
    if version is None and model is AgentSettings:
        raise GenomeError(file, "missing 'version'")
    if version is not None and version not in SUPPORTED_VERSIONS:
        supported = ", ".join(map(str, SUPPORTED_VERSIONS))
        raise GenomeError(file, f"unsupported genome version {version!r} (supported: {supported})")
    try:
        return model(**data)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        raise GenomeError(file, f"{where}: {first['msg']}") from exc


def _check_tools(file: Path, where: str, names: list[str], own: Sequence[str] = ()) -> None:
    from evoagent.agent.tools import TOOLS

    for name in names:
        if name not in TOOLS and name not in own:
            known = ", ".join(sorted([*TOOLS, *own]))
            raise GenomeError(file, f"{where}: unknown tool {name!r} (known: {known})")


# -- genome code, read statically (never executed in the kernel) ---------------------------


def tool_files(genome_dir: Path) -> list[Path]:
    """`tools/*.py` of a genome; files starting with `_` are helpers, not tools."""
    folder = Path(genome_dir) / "tools"
    return sorted(p for p in folder.glob("*.py") if not p.name.startswith("_")) if folder.is_dir() else []


def hook_files(genome_dir: Path) -> list[Path]:
    """`hooks/*.py` of a genome (helpers starting with `_` excluded)."""
    folder = Path(genome_dir) / "hooks"
    return sorted(p for p in folder.glob("*.py") if not p.name.startswith("_")) if folder.is_dir() else []


def _load_hooks(genome_dir: Path) -> dict[str, Path]:
    hooks = {}
    for file in hook_files(genome_dir):
        if file.stem not in HOOK_POINTS:
            # A misspelt hook would silently never run.
            raise GenomeError(file, f"unknown hook point {file.stem!r} (known: {', '.join(HOOK_POINTS)})")
        _require_function(file, _parse(file), "hook", "hook(payload)")
        hooks[file.stem] = file
    return hooks


def load_code_tool(file: Path) -> CodeTool:
    """A `tools/` file read statically (name, function, literal SCHEMA validated); a
    GenomeError naming the file when anything is wrong. Nothing in it runs."""
    from evoagent.agent.tools import TOOLS

    if not _CODE_NAME.fullmatch(file.stem):
        raise GenomeError(file, "a tool's file name must be lower_snake_case (it is the tool's name)")
    if file.stem in TOOLS:
        raise GenomeError(file, f"tool name {file.stem!r} is a built-in tool's; pick another name")
    tree = _parse(file)
    _require_function(file, tree, "run", "run(args, workspace)")
    schema = read_tool_schema(file, tree)
    problem = schema_problem(schema, file.stem)
    if problem:
        raise GenomeError(file, f"SCHEMA: {problem}")
    return CodeTool(file.stem, file, schema)


def _parse(file: Path) -> ast.Module:
    try:
        return ast.parse(file.read_text(encoding="utf-8"), str(file))
    except SyntaxError as exc:
        raise GenomeError(file, f"syntax error at line {exc.lineno}: {exc.msg}") from exc
    except UnicodeDecodeError as exc:
        raise GenomeError(file, "not UTF-8 text") from exc


def _require_function(file: Path, tree: ast.Module, name: str, signature: str) -> None:
    for node in tree.body:
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef) and node.name == name:
            return
        if isinstance(node, ast.Assign) and any(
            isinstance(t, ast.Name) and t.id == name for t in node.targets
        ):
            return
    raise GenomeError(file, f"no top-level {signature} function")


def read_tool_schema(file: Path, tree: ast.Module | None = None) -> dict[str, Any]:
    """The module's top-level `SCHEMA = {...}`, evaluated as a literal: the kernel offers the
    tool to the model without running any of its code."""
    tree = tree or _parse(file)
    for node in tree.body:
        targets = node.targets if isinstance(node, ast.Assign) else (
            [node.target] if isinstance(node, ast.AnnAssign) and node.value else []
        )
        if any(isinstance(t, ast.Name) and t.id == "SCHEMA" for t in targets):
            try:
                value = ast.literal_eval(node.value)
            except (ValueError, TypeError, SyntaxError, RecursionError, MemoryError) as exc:
                raise GenomeError(file, f"SCHEMA must be a literal dict (line {node.lineno})") from exc
            if not isinstance(value, dict):
                raise GenomeError(file, f"SCHEMA must be a dict (line {node.lineno})")
            return value
    raise GenomeError(file, 'no top-level SCHEMA = {"name": ..., "description": ..., "parameters": ...}')


def schema_problem(schema: Any, name: str) -> str | None:
    """What is wrong with a tool SCHEMA, or None. The argument schema may use the JSON-schema
    subset the kernel checks calls against (types, properties, required, items, enum,
    additionalProperties, description)."""
    if not isinstance(schema, dict):
        return "must be a dict"
    extra = sorted(set(schema) - {"name", "description", "parameters"})
    if extra:
        return f"unknown key {extra[0]!r} (expected name, description, parameters)"
    if schema.get("name") != name:
        return f"name must be {name!r} (the file's name), got {schema.get('name')!r}"
    if not isinstance(schema.get("description"), str) or not schema["description"].strip():
        return "description must be a non-empty string"
    params = schema.get("parameters")
    if not isinstance(params, dict) or params.get("type") != "object":
        return 'parameters must be a JSON schema with "type": "object"'
    return _schema_node_problem(params, "parameters")


_SCHEMA_KEYS = {"type", "description", "properties", "required", "items", "enum",
                "additionalProperties", "default", "title"}


def _schema_node_problem(node: Any, where: str) -> str | None:
    from evoagent.agent.tools.base import JSON_TYPES

    if not isinstance(node, dict):
        return f"{where} must be a dict"
    unknown = sorted(set(node) - _SCHEMA_KEYS)
    if unknown:
        return f"{where}: unsupported keyword {unknown[0]!r} (supported: {', '.join(sorted(_SCHEMA_KEYS))})"
    kind = node.get("type")
    if kind is not None and kind not in JSON_TYPES:
        return f"{where}: unknown type {kind!r} (known: {', '.join(JSON_TYPES)})"
    if "enum" in node and not isinstance(node["enum"], list):
        return f"{where}: enum must be a list"
    if "additionalProperties" in node and not isinstance(node["additionalProperties"], bool):
        return f"{where}: additionalProperties must be true or false"
    props = node.get("properties", {})
    if not isinstance(props, dict):
        return f"{where}: properties must be a dict"
    required = node.get("required", [])
    if not isinstance(required, list) or not all(isinstance(r, str) for r in required):
        return f"{where}: required must be a list of names"
    missing = [r for r in required if r not in props]
    if missing:
        return f"{where}: required {missing[0]!r} is not in properties"
    for prop, sub in props.items():
        problem = _schema_node_problem(sub, f"{where}.{prop}")
        if problem:
            return problem
    if "items" in node:
        return _schema_node_problem(node["items"], f"{where}.items")
    return None


def _load_skills(folder: Path) -> dict[str, Skill]:
    skills = {}
    for file in sorted(folder.glob("*.md")) if folder.is_dir() else []:
        try:
            text = file.read_text(encoding="utf-8")
        except UnicodeDecodeError as exc:
            raise GenomeError(file, "not UTF-8 text") from exc
        front, body = _front_matter(text)
        description = front.get("description", "").strip()
        if not description:
            raise GenomeError(file, "missing front matter 'description: ...' (one line)")
        skills[file.stem] = Skill(file.stem, description, body.strip())
    return skills


def _front_matter(text: str) -> tuple[dict[str, str], str]:
    lines = text.splitlines()
    if not lines or lines[0].strip() != "---":
        return {}, text
    for end in range(1, len(lines)):
        if lines[end].strip() == "---":
            pairs = (line.split(":", 1) for line in lines[1:end] if ":" in line)
            return {k.strip(): v.strip() for k, v in pairs}, "\n".join(lines[end + 1 :])
    return {}, text


def template_dir() -> Path:
    """The packaged `.agent-template` (installed as `evoagent.agent_template`), or the
    checkout's copy in an editable install that does not map it."""
    try:
        spec = importlib.util.find_spec("evoagent.agent_template")
    except ModuleNotFoundError:
        spec = None
    for location in (spec.submodule_search_locations or []) if spec else []:
        if (Path(location) / "agent.toml").is_file():
            return Path(location)
    return Path(__file__).resolve().parents[1] / ".agent-template"


def render_template_prompt(template_name: str, **variables: Any) -> str:
    """Render a prompt of the packaged template (the kernel's own text, trusted), the way a
    genome's prompts render (StrictUndefined), stripped."""
    rel = _template_rel(template_name)
    return _template_environment().get_template(rel).render(**variables).strip()


@cache
def _template_environment() -> Any:
    return _environment(template_dir())


def init_genome(dest: Path) -> bool:
    """Make `dest` a genome repository (template copy, branch main, one commit). Idempotent:
    an existing genome is left as it is. Returns True when it created the commit."""
    dest = Path(dest)
    if not (dest / "agent.toml").exists():
        source = template_dir()
        if not (source / "agent.toml").is_file():
            raise GenomeError(source, "genome template not found (broken installation)")
        shutil.copytree(
            source, dest, dirs_exist_ok=True, ignore=shutil.ignore_patterns("__pycache__", "*.pyc")
        )
    if not (dest / ".git").exists():
        _git(dest, "init", "-q", "-b", "main", "--template=")
    if _git(dest, "rev-parse", "--verify", "--quiet", "HEAD", check=False) is not None:
        return False
    _git(dest, "add", "-A")
    _git(dest, "commit", "-q", "--no-verify", "-m", "Initial genome from evoagent's template")
    return True


def _git(repo: Path, *args: str, check: bool = True) -> str | None:
    name, email = GENOME_IDENTITY
    env = {
        **os.environ,
        "GIT_AUTHOR_NAME": name, "GIT_AUTHOR_EMAIL": email,
        "GIT_COMMITTER_NAME": name, "GIT_COMMITTER_EMAIL": email,
        # The user's global config may sign commits, run hooks or add template files.
        "GIT_CONFIG_GLOBAL": os.devnull, "GIT_CONFIG_NOSYSTEM": "1",
    }
    cmd = ["git", "-c", "commit.gpgsign=false", "-c", f"core.hooksPath={os.devnull}", *args]
    proc = subprocess.run(cmd, cwd=repo, env=env, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        if not check:
            return None
        raise GenomeError(repo, f"git {args[0]} failed: {proc.stderr.strip() or proc.returncode}")
    return proc.stdout
