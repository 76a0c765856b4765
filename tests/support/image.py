"""The container image's Dockerfile read as the image would run: its last stage's
instructions, its environment, and its exec-form commands with the image's programs
(found on PATH in /opt/bodega/bin inside it) replaced by this venv's."""

import json
import sys
from pathlib import Path
from typing import Any

from dockerfile_parse import DockerfileParser

ROOT = Path(__file__).resolve().parents[2]
DOCKERFILE = ROOT / "Dockerfile"
IMAGE_PROGRAMS = {"bodega": str(Path(sys.executable).with_name("bodega")), "python": sys.executable}


def parsed() -> DockerfileParser:
    return DockerfileParser(str(DOCKERFILE))


def image_environment() -> dict[str, str]:
    """The ENV the running image has (the last stage's)."""
    environment: dict[str, str] = parsed().envs
    return environment


def final_stage() -> list[dict[str, Any]]:
    """The instructions of the image's last stage, the one that runs."""
    instructions: list[dict[str, Any]] = parsed().structure
    starts = [i for i, step in enumerate(instructions) if step["instruction"] == "FROM"]
    return instructions[starts[-1] :]


def values(instruction: str) -> list[str]:
    return [step["value"] for step in final_stage() if step["instruction"] == instruction]


def exec_form(instruction: str) -> list[str]:
    """An instruction's JSON (exec) form; the shell form would need a shell in the image."""
    (value,) = values(instruction)
    command = value.split("CMD", 1)[1] if instruction == "HEALTHCHECK" else value
    words: list[str] = json.loads(command)
    return [IMAGE_PROGRAMS.get(words[0], words[0]), *words[1:]]


def start_command() -> list[str]:
    """What the container runs: ENTRYPOINT, then CMD."""
    return exec_form("ENTRYPOINT") + exec_form("CMD")
