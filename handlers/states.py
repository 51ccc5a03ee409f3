"""Multi-step dialogs. /cancel leaves any of them."""

from aiogram.fsm.state import State, StatesGroup


class Registration(StatesGroup):
    name = State()
    districts = State()


class DistrictChange(StatesGroup):
    districts = State()


class NewOrder(StatesGroup):
    district = State()
    description = State()
    pickup = State()
    dropoff = State()
