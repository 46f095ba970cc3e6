"""The Jinja2 environment for nanoml's templates (plugin scaffolds, run reports)."""

import jinja2


def environment(folder, *, html=False):
    """Templates under ``nanoml/templates/<folder>``: strict about missing values, with
    block tags that leave no blank lines; `html` escapes every value (autoescape)."""
    return jinja2.Environment(
        loader=jinja2.PackageLoader("nanoml", f"templates/{folder}"),
        autoescape=html,
        keep_trailing_newline=True,
        trim_blocks=True,
        lstrip_blocks=True,
        undefined=jinja2.StrictUndefined,
    )
