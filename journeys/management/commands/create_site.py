from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError
from django.db import IntegrityError, transaction

from journeys.services.sites import site_create, site_secret_rotate


class Command(BaseCommand):
    help = (
        "Create a site with its allowed origins and a secret key; prints the secret key once "
        "and the public key as the last line."
    )

    def add_arguments(self, parser):
        parser.add_argument("name")
        parser.add_argument("--domain", required=True)
        parser.add_argument(
            "--allowed-origin",
            action="append",
            dest="allowed_origins",
            metavar="URL",
            help="an origin whose pages may call the browser API (repeatable); default https://DOMAIN",
        )

    def handle(self, *args, name: str, domain: str, allowed_origins, **options):
        try:
            with transaction.atomic():
                site = site_create(name=name, domain=domain, allowed_origins=allowed_origins)
                secret_key = site_secret_rotate(site=site)
        except IntegrityError as error:
            raise CommandError(f"A site with domain '{domain}' exists already.") from error
        except ValidationError as error:
            raise CommandError("; ".join(error.messages)) from error
        self.stdout.write(f"Created site {site.name} ({site.domain}), id {site.pk}.")
        self.stdout.write(f"Allowed origins: {', '.join(site.allowed_origins)}")
        self.stdout.write(f"Secret key (shown once; for the shop's backend only): {secret_key}")
        self.stdout.write(site.public_key)
