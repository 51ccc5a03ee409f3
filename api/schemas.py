"""What the HTTP API takes and gives: the seed's fields, as pydantic models."""

from datetime import datetime, timedelta
from typing import Annotated, Any, Literal
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field

from services.validation import ADDRESS_MAX, DESCRIPTION_MAX, NAME_MAX

# What the services take, said in the schema (the services check it again, and more: a name
# of invisible characters only, or one that grows past 64 characters once normalized, is a 422
# with the service's sentence).
VISIBLE = r"\S"  # something that is not white space
Name = Annotated[
    str,
    Field(
        min_length=1,
        max_length=NAME_MAX,
        pattern=VISIBLE,
        description=f"1 to {NAME_MAX} characters, not all white space.",
    ),
]
Description = Annotated[
    str,
    Field(
        min_length=1,
        max_length=DESCRIPTION_MAX,
        pattern=VISIBLE,
        description=f"1 to {DESCRIPTION_MAX} characters, not all white space.",
    ),
]
Names = Annotated[list[Name], Field(min_length=1, max_length=100)]


class _In(BaseModel):
    model_config = ConfigDict(extra="forbid")


class CourierIn(_In):
    model_config = ConfigDict(
        json_schema_extra={"examples": [{"name": "Ann Lee", "districts": ["North"]}]}
    )
    name: Name
    districts: Names = Field(description="Names of districts that exist.")


class DistrictIn(_In):
    model_config = ConfigDict(json_schema_extra={"examples": [{"name": "North"}]})
    name: Name


Latitude = Annotated[
    float, Field(strict=True, ge=-90, le=90, allow_inf_nan=False, description="Degrees, WGS 84.")
]
Longitude = Annotated[
    float,
    Field(strict=True, ge=-180, le=180, allow_inf_nan=False, description="Degrees, WGS 84."),
]


class PlaceIn(_In):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [{"lat": 51.5237, "lon": -0.1585, "address": "221B Baker St"}]
        }
    )
    lat: Latitude
    lon: Longitude
    address: str | None = Field(
        default=None, max_length=ADDRESS_MAX, description="What the courier is shown with it."
    )


class Place(BaseModel):
    lat: float
    lon: float
    address: str | None


class OrderIn(_In):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {"name": "2 pizzas to 5 Baker St", "district": "North", "queue": True},
                {
                    "name": "Flowers",
                    "district": "North",
                    "pickup": {"lat": 51.5237, "lon": -0.1585, "address": "Rose & Co"},
                    "dropoff": {"lat": 51.5301, "lon": -0.1246},
                },
            ]
        }
    )
    name: Description = Field(description="What to deliver.")
    district: Name = Field(description="The name of a district that exists.")
    pickup: PlaceIn | None = Field(
        default=None,
        description=(
            "Where it is picked up. With DISPATCH_RULE=nearest it goes to the free courier"
            " nearest this point (or the drop-off, without one), by their shared locations."
        ),
    )
    dropoff: PlaceIn | None = Field(default=None, description="Where it is delivered.")
    queue: bool = Field(
        default=False,
        strict=True,
        description=(
            "Keep the order waiting when no courier is free (202). With OFFER_SECONDS set, an"
            ' order offered to every free courier and declined by them all waits ("0")'
            " whatever this says."
        ),
    )


class CourierBrief(BaseModel):
    sid: UUID
    name: str


LINK = "A one-time t.me link, valid 30 days: opening it connects the courier's Telegram."


class CourierCreated(CourierBrief):
    districts: list[str]
    telegram_link: str = Field(description=LINK)


class CourierLink(BaseModel):
    sid: UUID
    telegram_link: str = Field(description=LINK + " The links made before stop working.")


class ActiveOrder(BaseModel):
    sid: UUID
    name: str
    district: str
    assigned_at: datetime


class CourierCard(CourierBrief):
    districts: list[str]
    active_order: ActiveOrder | None
    avg_order_complete_time: timedelta | None = Field(
        description="Mean delivery time (ISO 8601 duration); null with no completed orders."
    )
    avg_day_orders: float | None = Field(
        description="Completed orders per day on which the courier completed any; null with none."
    )
    location: "Location | None" = Field(
        default=None,
        description=(
            "Where the courier was last, while it counts (shared in Telegram during a shift);"
            " null when not shared, too old, or off shift."
        ),
    )
    acceptance_rate: float | None = Field(
        default=None,
        ge=0,
        le=1,
        description=(
            "The share of the offers of the last 7 days that the courier accepted (declined and"
            " run out ones count against it); null with none."
        ),
    )


class Location(BaseModel):
    lat: float
    lon: float
    at: datetime = Field(description="When Telegram had it.")


class District(BaseModel):
    sid: UUID
    name: str


class OrderAssigned(BaseModel):
    order_sid: UUID
    courier_sid: UUID


class OrderOffered(OrderAssigned):
    status: Literal["4"] = Field(
        description="Offered to `courier_sid`, who has OFFER_SECONDS to accept."
    )


class OrderQueued(BaseModel):
    order_sid: UUID
    status: Literal["0"]
    place: int = Field(description="Its place in its district's queue; 1 goes next.")


Status = Literal["0", "1", "2", "3", "4"]
State = Literal["queued", "in_progress", "completed", "cancelled", "offered"]


class Order(BaseModel):
    sid: UUID
    name: str
    district: str
    courier_sid: UUID | None = Field(description="The courier carrying it, or offered it.")
    status: Status = Field(
        description='"0" queued, "1" in progress, "2" completed, "3" cancelled, "4" offered to'
        " `courier_sid`, who has not accepted yet."
    )
    state: State
    created_at: datetime
    assigned_at: datetime | None
    completed_at: datetime | None
    cancelled_at: datetime | None
    pickup: Place | None = None
    dropoff: Place | None = None


class OrderPage(BaseModel):
    items: list[Order]
    next_cursor: str | None = Field(
        description="Pass it as `cursor`, with the same filters, for the next page; null: no more."
    )


Event = Literal[
    "order.offered", "order.assigned", "order.completed", "order.cancelled", "order.requeued"
]


class WebhookIn(_In):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {"url": "https://shop.example/dispatch-events", "events": ["order.completed"]}
            ]
        }
    )
    url: str = Field(
        max_length=2000,
        pattern=r"^https?://[^\s/?#@]+(?:[/?#]\S*)?$",
        description="Where to POST the events: http(s), on the internet (not a private address).",
        examples=["https://shop.example/dispatch-events"],
    )
    events: list[Event] | None = Field(
        default=None,
        min_length=1,
        max_length=4,
        description="The events to send; none given: every event.",
    )


class Webhook(BaseModel):
    id: UUID
    url: str
    events: list[Event] | None = Field(description="null: every event")
    created_at: datetime
    failing_since: datetime | None = Field(
        description="Since when every delivery has failed; null while they go through."
    )
    disabled_at: datetime | None = Field(
        description="Set after 3 days of failures: nothing more is sent. Delete it, add it again."
    )


class WebhookCreated(Webhook):
    secret: str = Field(
        description="The Standard Webhooks signing secret (whsec_…). Shown only in this answer."
    )


class WebhookCall(BaseModel):
    id: str = Field(description="Its webhook-id header: the same on every try.")
    event: Event
    order_sid: UUID
    state: Literal["pending", "sent", "failed"]
    attempts: int
    created_at: datetime
    next_attempt_at: datetime | None
    sent_at: datetime | None
    last_status: int | None = Field(description="The receiver's last HTTP status.")
    last_error: str | None


class Problem(BaseModel):
    """FastAPI's usual error body."""

    detail: str


Responses = dict[int | str, dict[str, Any]]


class Invalid(BaseModel):
    """A 422: the service's sentence, or FastAPI's list of the fields that failed validation."""

    detail: str | list[dict[str, Any]]


def problem(status: int, description: str) -> Responses:
    """An error answer, for the OpenAPI schema."""
    return {status: {"model": Problem, "description": description}}


def invalid(description: str) -> Responses:
    """A 422 for a body that is not what the endpoint takes; 400, 413 and 415 for one that is
    not JSON at all, too large, or of another content type (api.gate)."""
    return (
        {422: {"model": Invalid, "description": description}}
        | problem(
            400, "The body cannot be parsed: invalid UTF-8, nested too deep, a number too long"
        )
        | problem(413, "The body is over 64 KiB")
        | problem(415, "The body is not JSON (Content-Type: application/json)")
    )


UNAUTHORIZED = problem(401, "No valid bearer token")


def links(**targets: tuple[str, str, str]) -> dict[str, Any]:
    """OpenAPI links from an answer to the operations it leads to (for clients, and for
    schemathesis' stateful tests): name = (operationId, its parameter, the answer's field)."""
    return {
        "links": {
            name: {"operationId": operation, "parameters": {parameter: f"$response.body#/{field}"}}
            for name, (operation, parameter, field) in targets.items()
        }
    }


def operation_id(route: Any) -> str:
    """An operation's id is its function's name: get_order, post_order, ..."""
    return str(route.name)
