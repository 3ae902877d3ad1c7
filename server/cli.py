"""The ``galsearch`` console command.

Sub-commands live next to the code they drive and are imported only when invoked, so
``galsearch --help`` stays fast and a command's heavy imports (torch, faiss, GalSim) are paid
only by the command that needs them. To add one, add a line to :data:`COMMANDS`.
"""

from __future__ import annotations

import importlib

import click

# name -> "module:attribute" of a click.Command
COMMANDS: dict[str, str] = {
    "simulate": "ml.simulate.cli:simulate",
    "fit-augment": "ml.augment.cli:fit_augment",
    "ingest": "ml.ingest.cli:ingest",
    "survey-info": "ml.survey_info:survey_info",
    "train": "ml.train.cli:train",
    "evaluate": "ml.evaluate.cli:evaluate",
    "embed": "ml.embed.cli:embed",
    "index": "ml.index.cli:index",
    "pipeline": "ml.pipeline.cli:pipeline",
    "serve": "server.commands:serve",
    "nginx-config": "server.commands:nginx_config",
    "create-user": "server.commands:create_user",
    "db": "server.commands:db",
    "worker": "server.jobs.cli:worker",
    "demo": "server.demo.cli:demo",
}


class LazyGroup(click.Group):
    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(COMMANDS)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        target = COMMANDS.get(cmd_name)
        if target is None:
            return None
        module_name, attr = target.split(":")
        return getattr(importlib.import_module(module_name), attr)


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="galsearch")
def main() -> None:
    """galsearch: find rare objects in a large image survey from one example."""


if __name__ == "__main__":
    main()
