from django.contrib import admin

from analytics.models import ConversionModel


@admin.register(ConversionModel)
class ConversionModelAdmin(admin.ModelAdmin):
    """Read-only: models are trained and activated by the worker (analytics.conversion_training)."""

    list_display = ("site", "version", "is_active", "training_size", "holdout_size", "auc", "brier", "created_at")
    list_filter = ("is_active", "site")
    list_select_related = ("site",)
    ordering = ("site", "-version")

    def get_readonly_fields(self, request, obj=None):
        return [f.name for f in self.model._meta.fields]

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False
