from django.apps import AppConfig


class DevtoolsConfig(AppConfig):
    """Tooling beside the product: its management commands (launch, simulate, bench,
    bulk_generate), the demo shop, benchmarks. The product's apps never import it."""

    name = "devtools"
    verbose_name = "Developer tools"
