"""Shell completion scripts for bash, zsh and fish, generated from the parser itself.

One walk over the full parser gives every command (``cache`` actions as ``cache ACTION``) with
its options, so a new option completes without anyone editing a script. TOOL arguments of
the commands that take them complete from ``toolfetch list --names`` (the lockfile of the
directory the shell is in). zsh loads the bash script through ``bashcompinit``, the way zsh
documents for programs that ship one.
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass

SHELLS = ("bash", "zsh", "fish")
TOOL_COMMANDS = ("fetch", "which", "run", "lock")  # their positionals are tool names


@dataclass(frozen=True)
class CommandWords:
    name: str  # "fetch", "cache gc"
    help: str
    options: tuple[tuple[str, str], ...]  # (option string, help)


def subcommands(parser: argparse.ArgumentParser) -> dict[str, tuple[str, argparse.ArgumentParser]]:
    """name -> (help, subparser) of a parser's subcommands."""
    for action in parser._actions:  # argparse keeps no public list of them
        if isinstance(action, argparse._SubParsersAction):
            helps = {a.dest: a.help or "" for a in action._choices_actions}
            return {n: (helps.get(n, ""), p) for n, p in action.choices.items()}
    return {}


def _options(parser: argparse.ArgumentParser) -> tuple[tuple[str, str], ...]:
    return tuple((s, (a.help or "").replace("\n", " ")) for a in parser._actions
                 for s in a.option_strings if a.help != argparse.SUPPRESS)


def words(parser: argparse.ArgumentParser) -> list[CommandWords]:
    """Every command of the (full) parser with its options; ``cache`` actions separately."""
    out: list[CommandWords] = []
    for name, (help_text, sub) in subcommands(parser).items():
        out.append(CommandWords(name, help_text, _options(sub)))
        for action, (action_help, sp) in subcommands(sub).items():
            out.append(CommandWords(f"{name} {action}", action_help, _options(sp)))
    return out


def _quote(text: str) -> str:
    return "'" + text.replace("'", "'\\''") + "'"


def bash(parser: argparse.ArgumentParser) -> str:
    commands = words(parser)
    top = " ".join(c.name for c in commands if " " not in c.name)
    globals_ = " ".join(s for s, _ in _options(parser))
    cases = []
    for c in commands:
        opts = " ".join(s for s, _ in c.options)
        actions = " ".join(a.name.split()[1] for a in commands
                           if a.name.startswith(c.name + " "))
        tools = ' $(toolfetch list --names 2>/dev/null)' if c.name in TOOL_COMMANDS else ""
        cases.append(f"        {_quote(c.name)}) words_={_quote(opts + ' ' + actions)}"
                     f"\"{tools}\" ;;")
    return "\n".join([
        "# toolfetch completion for bash (and zsh via bashcompinit)",
        "_toolfetch() {",
        "    local cur=${COMP_WORDS[COMP_CWORD]} cmd='' i w words_",
        "    for ((i = 1; i < COMP_CWORD; i++)); do",
        "        w=${COMP_WORDS[i]}",
        "        case $w in -*) continue ;; esac",
        "        if [ -z \"$cmd\" ]; then cmd=$w",
        "        elif [ \"$cmd\" = cache ]; then cmd=\"cache $w\"; break",
        "        else break; fi",
        "    done",
        "    case $cmd in",
        f"        '') words_={_quote(top + ' ' + globals_)} ;;",
        *cases,
        "        *) words_='' ;;",
        "    esac",
        "    case $cur in -*|'') ;; *) [ -z \"$cmd\" ] || [ \"$cmd\" = cache ] || "
        "compopt -o default 2>/dev/null ;; esac",
        "    COMPREPLY=($(compgen -W \"$words_\" -- \"$cur\"))",
        "}",
        "complete -F _toolfetch toolfetch",
        "",
    ])


def zsh(parser: argparse.ArgumentParser) -> str:
    return "\n".join([
        "#compdef toolfetch",
        "# toolfetch completion for zsh: the bash completion through zsh's bashcompinit",
        "autoload -U +X bashcompinit && bashcompinit",
        "autoload -U +X compinit && compinit -C",
        bash(parser),
    ])


def fish(parser: argparse.ArgumentParser) -> str:
    commands = words(parser)
    top = [c for c in commands if " " not in c.name]
    lines = ["# toolfetch completion for fish"]
    for s, h in _options(parser):
        lines.append(f"complete -c toolfetch {_fish_option(s)} -d {_quote(h)}")
    for c in top:
        lines.append("complete -c toolfetch -n __fish_use_subcommand "
                     f"-a {_quote(c.name)} -d {_quote(c.help)}")
    for c in commands:
        first, _, action = c.name.partition(" ")
        cond = f"__fish_seen_subcommand_from {first}"
        if action:
            cond += f"; and __fish_seen_subcommand_from {action}"
        elif any(a.name.startswith(first + " ") for a in commands):
            for a in commands:
                if a.name.startswith(first + " "):
                    lines.append(f"complete -c toolfetch -n {_quote(cond)} "
                                 f"-a {_quote(a.name.split()[1])} -d {_quote(a.help)}")
        for s, h in c.options:
            lines.append(f"complete -c toolfetch -n {_quote(cond)} {_fish_option(s)} "
                         f"-d {_quote(h)}")
        if c.name in TOOL_COMMANDS:
            lines.append(f"complete -c toolfetch -n {_quote(cond)} "
                         "-a '(toolfetch list --names 2>/dev/null)'")
    return "\n".join([*lines, ""])


def _fish_option(option: str) -> str:
    return f"-l {option[2:]}" if option.startswith("--") else f"-s {option[1:]}"


def script(shell: str, parser: argparse.ArgumentParser) -> str:
    return {"bash": bash, "zsh": zsh, "fish": fish}[shell](parser)
