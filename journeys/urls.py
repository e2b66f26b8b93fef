from django.urls import path

from journeys import api

urlpatterns = [
    path("sessions", api.SessionStartApi.as_view(), name="session-start"),
    path("sessions/<str:session_id>/stage", api.StageUpdateApi.as_view(), name="session-stage"),
    path("sessions/<str:session_id>/conversions", api.ConversionApi.as_view(), name="session-conversions"),
    path("events", api.EventsApi.as_view(), name="events"),
    path("identify", api.IdentifyApi.as_view(), name="identify"),
    path("consent", api.ConsentApi.as_view(), name="consent"),
    path("visitors/<str:visitor_id>", api.VisitorApi.as_view(), name="visitor"),
]
