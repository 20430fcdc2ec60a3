# ruff: noqa: E501 - template text reads better unwrapped
"""The handoff document's templates and labels (English and Japanese)."""

from __future__ import annotations

LABELS: dict[str, dict[str, str]] = {
    "en": {
        "title": "Handoff", "status": "Status", "completeness": "Completeness", "missing": "Missing before submit",
        "account": "Account", "external_id": "Account ID", "name": "Name", "segment": "Segment", "plan": "Plan",
        "seats": "Seats", "arr": "ARR", "contract_start": "Contract start", "renewal_date": "Renewal date",
        "crm_opportunity_id": "CRM opportunity", "owners": "Owners", "presales_owner": "Presales owner",
        "postsales_owner": "Post-sales owner", "context": "Deal context", "challenges": "Challenges",
        "goals": "Goals", "proposal": "Proposal", "demo_notes": "Demo notes", "commitments": "Commitments",
        "kind": "Kind", "due_date": "Due", "owner": "Owner", "evidence": "Evidence", "overdue": "OVERDUE",
        "no_commitments": "Nothing was promised beyond the standard contract.", "stakeholders": "Stakeholders",
        "role": "Role", "email": "Email", "champion": "champion", "risks": "Risks", "history": "History",
        "none": "None recorded", "not_set": "not set", "by": "by", "reason": "reason",
    },
    "ja": {
        "title": "引き継ぎ資料", "status": "ステータス", "completeness": "充足率", "missing": "提出前に不足している項目",
        "account": "顧客", "external_id": "顧客ID", "name": "会社名", "segment": "セグメント", "plan": "プラン",
        "seats": "ライセンス数", "arr": "ARR", "contract_start": "契約開始日", "renewal_date": "更新日",
        "crm_opportunity_id": "CRM商談ID", "owners": "担当者", "presales_owner": "プリセールス担当",
        "postsales_owner": "ポストセールス担当", "context": "商談の背景", "challenges": "課題", "goals": "目標",
        "proposal": "提案内容", "demo_notes": "デモメモ", "commitments": "約束事項", "kind": "種別",
        "due_date": "期限", "owner": "担当", "evidence": "エビデンス", "overdue": "期限超過",
        "no_commitments": "標準契約以外の約束事項はありません。", "stakeholders": "ステークホルダー",
        "role": "役割", "email": "メール", "champion": "チャンピオン", "risks": "リスク", "history": "履歴",
        "none": "記録なし", "not_set": "未設定", "by": "実施者", "reason": "理由",
    },
}

VALUE_LABELS: dict[str, dict[str, str]] = {
    "en": {
        "draft": "Draft", "submitted": "Submitted", "accepted": "Accepted", "returned": "Returned",
        "open": "Open", "in_progress": "In progress", "delivered": "Delivered", "waived": "Waived",
        "at_risk": "At risk", "customization": "Customization", "feature": "Feature", "integration": "Integration",
        "sla": "SLA", "training": "Training", "other": "Other",
    },
    "ja": {
        "draft": "下書き", "submitted": "提出済み", "accepted": "受領済み", "returned": "差し戻し",
        "open": "未着手", "in_progress": "対応中", "delivered": "提供済み", "waived": "免除",
        "at_risk": "リスクあり", "customization": "カスタマイズ", "feature": "機能", "integration": "連携",
        "sla": "SLA", "training": "トレーニング", "other": "その他",
    },
}

MARKDOWN = """\
{%- macro v(x) -%}{{ x if x is not none and x != '' else '_' ~ L.not_set ~ '_' }}{%- endmacro -%}
{%- macro items(xs) -%}
{%- if xs %}{% for x in xs %}
- {{ x }}{% endfor %}{% else %}
_{{ L.none }}_{% endif %}
{%- endmacro -%}
# {{ L.title }}: {{ h.account.name }}

- **{{ L.status }}:** {{ V[h.status] }}
- **{{ L.completeness }}:** {{ (h.completeness * 100) | round | int }}%
{%- if h.missing %}
- **{{ L.missing }}:** {{ h.missing | join(', ') }}
{%- endif %}
- **{{ L.crm_opportunity_id }}:** {{ h.crm_opportunity_id }}

## {{ L.account }}

- **{{ L.external_id }}:** {{ h.account.external_id }}
- **{{ L.segment }}:** {{ v(h.account.segment) }}
- **{{ L.plan }}:** {{ v(h.account.plan) }}
- **{{ L.seats }}:** {{ v(h.account.seats) }}
- **{{ L.arr }}:** {{ v(h.account.arr) }}{% if h.account.arr is not none and h.account.currency %} {{ h.account.currency }}{% endif %}
- **{{ L.contract_start }}:** {{ v(h.account.contract_start) }}
- **{{ L.renewal_date }}:** {{ v(h.account.renewal_date) }}

## {{ L.owners }}

- **{{ L.presales_owner }}:** {{ v(h.presales_owner) }}
- **{{ L.postsales_owner }}:** {{ v(h.postsales_owner) }}

## {{ L.context }}

### {{ L.challenges }}
{{ items(h.challenges) }}

### {{ L.goals }}
{{ items(h.goals) }}

### {{ L.proposal }}

{{ h.proposal if h.proposal else '_' ~ L.none ~ '_' }}

### {{ L.demo_notes }}

{{ h.demo_notes if h.demo_notes else '_' ~ L.none ~ '_' }}

## {{ L.commitments }}
{% if h.commitments %}{% for c in h.commitments %}
### {{ loop.index }}. {{ c.title }}{% if c.overdue %} ⚠ {{ L.overdue }}{% endif %}

- **{{ L.status }}:** {{ V[c.status] }}
- **{{ L.kind }}:** {{ V[c.kind] }}
- **{{ L.due_date }}:** {{ v(c.due_date) }}
- **{{ L.owner }}:** {{ v(c.owner) }}
{%- if c.evidence %}
- **{{ L.evidence }}:** {{ c.evidence }}
{%- endif %}
{% if c.description %}
{{ c.description }}
{% endif %}{% endfor %}{% elif h.no_commitments %}
{{ L.no_commitments }}
{% else %}
_{{ L.none }}_
{% endif %}
## {{ L.stakeholders }}
{% if h.stakeholders %}{% for s in h.stakeholders %}
- **{{ s.name }}**{% if s.role %} — {{ s.role }}{% endif %}{% if s.email %} <{{ s.email }}>{% endif %}{% if s.champion %} ({{ L.champion }}){% endif %}{% endfor %}
{% else %}
_{{ L.none }}_
{% endif %}
## {{ L.risks }}
{{ items(h.risks) }}

## {{ L.history }}
{% for t in h.history %}
- {{ t.at }}: {{ V[t.to_status] }}{% if t.by %} ({{ L.by }}: {{ t.by }}){% endif %}{% if t.reason %} — {{ L.reason }}: {{ t.reason }}{% endif %}{% endfor %}
"""

HTML = """\
{%- macro v(x) -%}{% if x is not none and x != '' %}{{ x }}{% else %}<em>{{ L.not_set }}</em>{% endif %}{%- endmacro -%}
{%- macro items(xs) -%}
{% if xs %}<ul>{% for x in xs %}<li>{{ x }}</li>{% endfor %}</ul>{% else %}<p><em>{{ L.none }}</em></p>{% endif %}
{%- endmacro -%}
<!DOCTYPE html>
<html lang="{{ lang }}">
<head>
<meta charset="utf-8">
<title>{{ L.title }}: {{ h.account.name }}</title>
<style>
body{font-family:system-ui,sans-serif;max-width:52rem;margin:2rem auto;line-height:1.5;color:#1d1d1f}
table{border-collapse:collapse;width:100%}td,th{border:1px solid #ccc;padding:.3rem .5rem;text-align:left}
.overdue{color:#b00020;font-weight:bold}.status{font-variant:small-caps}
</style>
</head>
<body>
<h1>{{ L.title }}: {{ h.account.name }}</h1>
<p><strong>{{ L.status }}:</strong> <span class="status">{{ V[h.status] }}</span> ·
<strong>{{ L.completeness }}:</strong> {{ (h.completeness * 100) | round | int }}% ·
<strong>{{ L.crm_opportunity_id }}:</strong> {{ h.crm_opportunity_id }}</p>
{% if h.missing %}<p><strong>{{ L.missing }}:</strong> {{ h.missing | join(', ') }}</p>{% endif %}

<h2>{{ L.account }}</h2>
<table>
<tr><th>{{ L.external_id }}</th><td>{{ h.account.external_id }}</td></tr>
<tr><th>{{ L.segment }}</th><td>{{ v(h.account.segment) }}</td></tr>
<tr><th>{{ L.plan }}</th><td>{{ v(h.account.plan) }}</td></tr>
<tr><th>{{ L.seats }}</th><td>{{ v(h.account.seats) }}</td></tr>
<tr><th>{{ L.arr }}</th><td>{{ v(h.account.arr) }}{% if h.account.arr is not none and h.account.currency %} {{ h.account.currency }}{% endif %}</td></tr>
<tr><th>{{ L.contract_start }}</th><td>{{ v(h.account.contract_start) }}</td></tr>
<tr><th>{{ L.renewal_date }}</th><td>{{ v(h.account.renewal_date) }}</td></tr>
</table>

<h2>{{ L.owners }}</h2>
<table>
<tr><th>{{ L.presales_owner }}</th><td>{{ v(h.presales_owner) }}</td></tr>
<tr><th>{{ L.postsales_owner }}</th><td>{{ v(h.postsales_owner) }}</td></tr>
</table>

<h2>{{ L.context }}</h2>
<h3>{{ L.challenges }}</h3>
{{ items(h.challenges) }}
<h3>{{ L.goals }}</h3>
{{ items(h.goals) }}
<h3>{{ L.proposal }}</h3>
{% if h.proposal %}<p>{{ h.proposal }}</p>{% else %}<p><em>{{ L.none }}</em></p>{% endif %}
<h3>{{ L.demo_notes }}</h3>
{% if h.demo_notes %}<p>{{ h.demo_notes }}</p>{% else %}<p><em>{{ L.none }}</em></p>{% endif %}

<h2>{{ L.commitments }}</h2>
{% if h.commitments %}
<table>
<tr><th>#</th><th>{{ L.commitments }}</th><th>{{ L.kind }}</th><th>{{ L.status }}</th><th>{{ L.due_date }}</th><th>{{ L.owner }}</th><th>{{ L.evidence }}</th></tr>
{% for c in h.commitments %}
<tr><td>{{ loop.index }}</td><td><strong>{{ c.title }}</strong>{% if c.description %}<br>{{ c.description }}{% endif %}</td>
<td>{{ V[c.kind] }}</td><td class="status">{{ V[c.status] }}{% if c.overdue %} <span class="overdue">{{ L.overdue }}</span>{% endif %}</td>
<td>{{ v(c.due_date) }}</td><td>{{ v(c.owner) }}</td><td>{{ c.evidence or '' }}</td></tr>
{% endfor %}
</table>
{% elif h.no_commitments %}<p>{{ L.no_commitments }}</p>{% else %}<p><em>{{ L.none }}</em></p>{% endif %}

<h2>{{ L.stakeholders }}</h2>
{% if h.stakeholders %}
<table>
<tr><th>{{ L.name }}</th><th>{{ L.role }}</th><th>{{ L.email }}</th></tr>
{% for s in h.stakeholders %}
<tr><td>{{ s.name }}{% if s.champion %} ({{ L.champion }}){% endif %}</td><td>{{ v(s.role) }}</td><td>{{ v(s.email) }}</td></tr>
{% endfor %}
</table>
{% else %}<p><em>{{ L.none }}</em></p>{% endif %}

<h2>{{ L.risks }}</h2>
{{ items(h.risks) }}

<h2>{{ L.history }}</h2>
<ul>
{% for t in h.history %}<li>{{ t.at }}: {{ V[t.to_status] }}{% if t.by %} ({{ L.by }}: {{ t.by }}){% endif %}{% if t.reason %} — {{ L.reason }}: {{ t.reason }}{% endif %}</li>
{% endfor %}</ul>
</body>
</html>
"""
