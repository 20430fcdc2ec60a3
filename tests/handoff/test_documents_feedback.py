from __future__ import annotations

import pytest

from tests.handoff.conftest import accepted, assert_problem, complete_body, create, minimal_body, snapshot


async def test_document_lists_everything_in_both_languages_and_escapes_html(service) -> None:
    async with service("handoff", run_consumers=False, run_relay=False) as svc:
        body = complete_body(
            challenges=["Manual onboarding of 40 sites", "<script>alert('x')</script> in the legacy portal"],
            proposal="Business plan & SSO",
        )
        body["commitments"].append({"title": "Custom <b>report</b> export", "kind": "customization",
                                    "due_date": "2030-03-01"})
        h = await accepted(svc, body)
        cid = h["commitments"][0]["id"]
        await svc.client.patch(f"/v1/handoffs/{h['id']}/commitments/{cid}", json={"status": "delivered"})

        docs = {}
        for fmt in ("markdown", "html"):
            for lang in ("en", "ja"):
                r = await svc.client.get(f"/v1/handoffs/{h['id']}/document", params={"format": fmt, "lang": lang})
                assert r.status_code == 200, r.text
                assert r.headers["content-type"].startswith("text/markdown" if fmt == "markdown" else "text/html")
                assert r.headers["content-language"] == lang
                docs[fmt, lang] = r.text

        for lang in ("en", "ja"):
            md = docs["markdown", lang]
            for text in ["SSO with Okta", "Admin training", "Custom <b>report</b> export",
                         "Manual onboarding of 40 sites",
                         "<script>alert('x')</script> in the legacy portal", "Onboard all sites within 60 days",
                         "Business plan & SSO", "Loved bulk import", "Hanako Yamada", "IT understaffed until January",
                         "Two sessions for 10 admins", "120000.50 USD", "2030-01-15"]:
                assert text in md, (lang, text)
            html = docs["html", lang]
            assert "<script>" not in html and "&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt;" in html
            assert "Custom &lt;b&gt;report&lt;/b&gt; export" in html and "Business plan &amp; SSO" in html
            for text in ["SSO with Okta", "Admin training", "Manual onboarding of 40 sites", "Hanako Yamada",
                         "IT understaffed until January"]:
                assert text in html, (lang, text)
            assert f'<html lang="{lang}">' in html
        assert "## Commitments" in docs["markdown", "en"] and "Delivered" in docs["markdown", "en"]
        assert "## 約束事項" in docs["markdown", "ja"] and "提供済み" in docs["markdown", "ja"]
        assert "未着手" in docs["markdown", "ja"] and "課題" in docs["html", "ja"] and "リスク" in docs["html", "ja"]
        assert "Commitments" not in docs["markdown", "ja"]
        assert docs["markdown", "en"].count("### ") >= 3 + 4  # every commitment has its own heading

        assert_problem(await svc.client.get(f"/v1/handoffs/{h['id']}/document?format=pdf"), 422, "format")
        assert_problem(await svc.client.get(f"/v1/handoffs/{h['id']}/document?lang=fr"), 422, "lang")


async def test_document_of_a_sparse_draft(service) -> None:
    async with service("handoff", run_consumers=False, run_relay=False) as svc:
        h = await create(svc, minimal_body(no_commitments=True))
        r = await svc.client.get(f"/v1/handoffs/{h['id']}/document?lang=ja")
        assert r.status_code == 200
        assert "標準契約以外の約束事項はありません" in r.text and "提出前に不足している項目" in r.text
        assert "account.renewal_date" in r.text


async def test_feedback_per_handoff_and_per_presales_owner(service) -> None:
    async with service("handoff", run_consumers=False, run_relay=False) as svc:
        a = await accepted(svc, complete_body(presales_owner="ae.one@example.com"))
        b = await accepted(svc, complete_body(presales_owner="ae.two@example.com"))
        note = {"author": "csm.kato@example.com", "category": "actual_need",
                "body": "They needed audit logs far more than the integration."}
        r1 = await svc.client.post(f"/v1/handoffs/{a['id']}/feedback", json=note, headers={"Idempotency-Key": "f1"})
        assert r1.status_code == 201, r1.text
        fb = r1.json()
        assert fb["presales_owner"] == "ae.one@example.com" and fb["account_id"] == a["account"]["external_id"]
        r2 = await svc.client.post(f"/v1/handoffs/{a['id']}/feedback", json=note, headers={"Idempotency-Key": "f1"})
        assert r2.json()["id"] == fb["id"]
        await svc.client.post(f"/v1/handoffs/{a['id']}/feedback", json=note | {"category": "praise", "body": "Great"})
        await svc.client.post(f"/v1/handoffs/{b['id']}/feedback", json=note | {"body": "SLA was misunderstood"})

        r = await svc.client.get(f"/v1/handoffs/{a['id']}/feedback")
        assert [x["body"] for x in r.json()["items"]] == ["Great", note["body"]]
        r = await svc.client.get("/v1/feedback", params={"presales_owner": "ae.two@example.com"})
        assert [x["body"] for x in r.json()["items"]] == ["SLA was misunderstood"]
        r = await svc.client.get("/v1/feedback", params={"presales_owner": "ae.one@example.com", "category": "praise"})
        assert [x["body"] for x in r.json()["items"]] == ["Great"]
        r = await svc.client.get("/v1/feedback", params={"limit": 2})
        assert len(r.json()["items"]) == 2 and r.json()["next_cursor"]

        before = await snapshot(svc)
        assert_problem(await svc.client.post(f"/v1/handoffs/{a['id']}/feedback", json={"author": "x", "body": " "}),
                       422)
        assert_problem(await svc.client.post("/v1/handoffs/nope/feedback", json=note), 404, "nope")
        assert await snapshot(svc) == before


@pytest.mark.parametrize("path", ["/openapi.json"])
async def test_openapi_has_examples_and_scopes_on_every_route(service, path: str) -> None:
    async with service("handoff", run_consumers=False, run_relay=False) as svc:
        spec = (await svc.client.get(path)).json()
        schemas = spec["components"]["schemas"]

        def has_example(ref_schema: dict) -> bool:
            if "$ref" in ref_schema:
                target = schemas[ref_schema["$ref"].rsplit("/", 1)[-1]]
                if target.get("examples"):
                    return True
                items = target.get("properties", {}).get("items", {}).get("items")
                return bool(items and has_example(items))
            return bool(ref_schema.get("examples") or ref_schema.get("example"))

        v1 = {p: ops for p, ops in spec["paths"].items() if p.startswith("/v1")}
        assert len(v1) >= 9
        for p, ops in v1.items():
            for method, op in ops.items():
                assert op.get("security"), (method, p)
                assert op.get("description") or op.get("summary"), (method, p)
                ok = next(c for c in op["responses"] if c.startswith("2"))
                content = op["responses"][ok]["content"]
                assert any(has_example(m.get("schema", {})) or m.get("example") for m in content.values()), (method, p)
                if "requestBody" in op:
                    for media in op["requestBody"]["content"].values():
                        s = media["schema"]
                        s = next((x for x in s.get("anyOf", []) if "$ref" in x), s)
                        assert has_example(s), (method, p)


async def test_document_format_follows_accept_unless_format_is_given(service) -> None:
    async with service("handoff", run_consumers=False, run_relay=False) as svc:
        h = await create(svc, minimal_body(no_commitments=True))
        url = f"/v1/handoffs/{h['id']}/document"
        browser = "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"
        for accept, media in [(browser, "text/html"), ("text/html", "text/html"), ("text/markdown", "text/markdown"),
                              ("*/*", "text/markdown"), ("text/*", "text/markdown"),
                              ("text/markdown;q=0.4, text/html;q=0.9", "text/html")]:
            r = await svc.client.get(url, headers={"Accept": accept})
            assert r.status_code == 200, (accept, r.text)
            assert r.headers["content-type"].startswith(media), accept
            assert r.headers["vary"] == "Accept"
            assert r.text.lstrip().startswith("<!DOCTYPE html>" if media == "text/html" else "#"), accept
        # ?format= wins over Accept, both ways.
        r = await svc.client.get(url, params={"format": "markdown"}, headers={"Accept": "text/html"})
        assert r.headers["content-type"].startswith("text/markdown") and r.text.lstrip().startswith("#")
        r = await svc.client.get(url, params={"format": "html"}, headers={"Accept": "application/pdf"})
        assert r.status_code == 200 and r.headers["content-type"].startswith("text/html")
        # Nothing servable: 406, saying what is.
        for accept in ("application/pdf", "text/html;q=0"):
            r = await svc.client.get(url, headers={"Accept": accept})
            assert_problem(r, 406, "text/html")
