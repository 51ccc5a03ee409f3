"""The OpenAPI schema lists every endpoint (the seed's eight, and more), with each answer it
can give."""

import httpx

EXPECTED = {
    ("post", "/courier"): {"201", "400", "401", "409", "413", "415", "422"},
    ("get", "/courier"): {"200", "401", "422"},
    ("get", "/courier/{sid}"): {"200", "401", "404", "422"},
    ("post", "/order"): {"201", "202", "400", "401", "409", "413", "415", "422"},
    ("get", "/order"): {"200", "401", "422"},
    ("get", "/order/{sid}"): {"200", "401", "404", "422"},
    ("post", "/order/{sid}"): {"200", "400", "401", "404", "409", "413", "415", "422"},
    ("post", "/order/{sid}/cancel"): {"200", "400", "401", "404", "409", "413", "415", "422"},
    ("post", "/courier/create_district"): {"201", "400", "401", "409", "413", "415", "422"},
    ("get", "/courier/get_districts"): {"200", "401"},
    ("post", "/courier/{sid}/telegram_link"): {
        "200",
        "400",
        "401",
        "404",
        "409",
        "413",
        "415",
        "422",
    },
    ("post", "/webhooks"): {"201", "400", "401", "409", "413", "415", "422"},
    ("get", "/webhooks"): {"200", "401"},
    ("delete", "/webhooks/{id}"): {"204", "401", "404", "422"},
    ("get", "/webhooks/{id}/deliveries"): {"200", "401", "404", "422"},
}


async def test_openapi_lists_every_path_and_answer(api: httpx.AsyncClient):
    schema = (await api.get("/openapi.json")).json()

    found = {
        (method, path): set(operation["responses"])
        for path, operations in schema["paths"].items()
        for method, operation in operations.items()
    }
    assert found == EXPECTED
    assert schema["components"]["securitySchemes"]["HTTPBearer"]["scheme"] == "bearer"


async def test_the_interactive_docs_are_served(api: httpx.AsyncClient):
    response = await api.get("/docs")
    assert response.status_code == 200
    assert "swagger" in response.text.lower()
