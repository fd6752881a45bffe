"""``toolfetch inspect`` as text: an :class:`~toolfetch.api.artifacts.ArtifactInfo` for
people (``--json`` prints :meth:`ArtifactInfo.to_json` instead)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from toolfetch.core.frozen import thaw
from toolfetch.core.sizes import format_size

if TYPE_CHECKING:
    from toolfetch.api.artifacts import ArtifactInfo

KIND_LABELS = {"image": "container image", "wasm": "WASM artifact", "tool": "tool artifact",
               "artifact": "artifact", "mixed": "mixed", "empty": "empty index"}


def render_artifact(info: ArtifactInfo) -> str:
    kind = KIND_LABELS.get(info.kind, info.kind)
    lines = [f"Reference:     {info.reference}", f"Digest:        {info.digest}",
             f"Media type:    {info.media_type}",
             f"Kind:          {kind}{' (index)' if info.is_index else ''}"]
    if info.wasm is not None:
        lines.append(f"WASM:          {info.wasm.kind} (WASI {info.wasm.wasi})")
    if info.artifact_type:
        lines.append(f"Artifact type: {info.artifact_type}")
    if info.subject:
        lines.append(f"Subject:       {info.subject}")
    for key, value in sorted(thaw(info.annotations or {}).items()):
        lines.append(f"Annotation:    {key}={value}")
    if info.is_index:
        lines.append("Platforms:")
        for child in info.manifests:
            label = KIND_LABELS.get(child.kind, "")
            size = child.total_size if child.total_size is not None else child.size
            lines.append(f"  {child.platform or '-':<16} {child.digest}  "
                         f"{format_size(size)}  {label}")
        return "\n".join(lines)
    lines.append(f"Layers:        {len(info.layers)} ({format_size(info.total_size or 0)} "
                 "with config)")
    for layer in info.layers:
        lines.append(f"  {layer.digest}  {format_size(layer.size):>10}  "
                     f"{layer.media_type}  {layer.title or ''}".rstrip())
    return "\n".join(lines)
