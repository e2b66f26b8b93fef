from django.core.management.base import BaseCommand, CommandError
from django.db import IntegrityError

from journeys.services.sites import site_create


class Command(BaseCommand):
    help = "Create a site and print its public key as the last line."

    def add_arguments(self, parser):
        parser.add_argument("name")
        parser.add_argument("--domain", required=True)

    def handle(self, *args, name: str, domain: str, **options):
        try:
            site = site_create(name=name, domain=domain)
        except IntegrityError as error:
            raise CommandError(f"A site with domain '{domain}' exists already.") from error
        self.stdout.write(f"Created site {site.name} ({site.domain}), id {site.pk}.")
        self.stdout.write(site.public_key)
