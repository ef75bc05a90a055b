//! Search and browse: full text over titles, descriptions, tags and SKUs with typo
//! tolerance, every filter, every sort paged by keyset, facets, cursors that belong to one
//! query, hostile search strings, and the featured and popular shelves.

use std::collections::HashSet;

use reqwest::Method;
use serde_json::{Value, json};

use super::*;
use crate::helpers::{problem, spawn_app};

const PRODUCTS: &str = "/api/v1/catalog/products";

/// GETs `path` with `query` as `who` (anonymous with `None`), asserting a 200.
async fn search(app: &TestApp, who: Option<&Actor>, query: &[(&str, &str)]) -> Value {
    let mut req = app.client.get(app.url(PRODUCTS)).query(query);
    if let Some(who) = who {
        req = req.bearer_auth(&who.token);
    }
    let res = req.send().await.unwrap();
    let status = res.status();
    let body: Value = res.json().await.unwrap();
    assert_eq!(status, 200, "{query:?}: {body}");
    body
}

/// The titles of a page, in order.
fn titles(page: &Value) -> Vec<String> {
    page["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["title"].as_str().unwrap().to_owned())
        .collect()
}

/// The titles of a page, sorted (for filters, where order does not matter).
fn title_set(page: &Value) -> Vec<String> {
    let mut t = titles(page);
    t.sort();
    t
}

async fn status_of(app: &TestApp, query: &[(&str, &str)]) -> (u16, Value) {
    let res = app
        .client
        .get(app.url(PRODUCTS))
        .query(query)
        .send()
        .await
        .unwrap();
    let status = res.status().as_u16();
    (status, res.json().await.unwrap_or(Value::Null))
}

#[tokio::test]
async fn words_find_titles_descriptions_tags_and_skus_and_typos_find_titles() {
    let app = spawn_app().await;
    let vendor = seller(&app);
    let phone = active_product(
        &app,
        &vendor,
        json!({"title": "Apple iPhone 15 Pro", "currency": "USD", "price": 99900, "sku": "APL-IP15-PRO"}),
    )
    .await;
    active_product(
        &app,
        &vendor,
        json!({"title": "Leather Case", "currency": "USD", "price": 2900,
               "description": "Fits every iPhone since the 12."}),
    )
    .await;
    active_product(
        &app,
        &vendor,
        json!({"title": "Trail Runner", "currency": "USD", "price": 8900, "tags": ["Sport", "running"]}),
    )
    .await;
    // A draft: its seller finds it, nobody else does.
    create_product(&app, &vendor, product_body("iPhone Prototype")).await;

    // The title outranks the description (weight A over C).
    let page = search(&app, None, &[("q", "iphone")]).await;
    assert_eq!(titles(&page), ["Apple iPhone 15 Pro", "Leather Case"]);
    assert_eq!(page["total"], json!({"value": 2, "relation": "eq"}));
    let mine = search(&app, Some(&vendor), &[("q", "iphone")]).await;
    assert_eq!(mine["items"].as_array().unwrap().len(), 3, "{mine}");

    // Stemming, tags, the SKU, and a typo.
    assert_eq!(
        titles(&search(&app, None, &[("q", "runners")]).await),
        ["Trail Runner"]
    );
    assert_eq!(
        titles(&search(&app, None, &[("q", "sport")]).await),
        ["Trail Runner"]
    );
    assert_eq!(
        titles(&search(&app, None, &[("q", "APL-IP15-PRO")]).await),
        ["Apple iPhone 15 Pro"]
    );
    assert_eq!(
        titles(&search(&app, None, &[("q", "iphnoe")]).await)[0],
        "Apple iPhone 15 Pro"
    );
    assert!(titles(&search(&app, None, &[("q", "zebra")]).await).is_empty());
    // Excluding a word never falls back to titles that have it (a review found the typo
    // arm returning exactly what was excluded).
    assert!(titles(&search(&app, None, &[("q", "apple -iphone")]).await).is_empty());

    // A SKU change reaches the index in the variant's own write.
    let phone: Value = send(
        &app,
        Method::GET,
        &format!("{PRODUCTS}/{}", phone["id"].as_str().unwrap()),
        None,
        None,
    )
    .await
    .json()
    .await
    .unwrap();
    let variant = phone["variants"][0]["id"].as_str().unwrap();
    let res = send(
        &app,
        Method::PATCH,
        &format!(
            "{PRODUCTS}/{}/variants/{variant}",
            phone["id"].as_str().unwrap()
        ),
        Some(&vendor),
        Some(json!({"sku": "NEWSKU-77"})),
    )
    .await;
    assert_eq!(res.status(), 200, "{}", res.text().await.unwrap());
    assert_eq!(
        titles(&search(&app, None, &[("q", "NEWSKU-77")]).await),
        ["Apple iPhone 15 Pro"]
    );
    assert!(titles(&search(&app, None, &[("q", "APL-IP15-PRO")]).await).is_empty());

    // tsquery and SQL syntax are words here, never errors.
    for q in [
        "&",
        "|",
        "!",
        ":*",
        "'",
        "\"",
        "''",
        "a & b | !c",
        "iphone:*",
        "\u{0}",
        "ip\u{0}hone",
        "(((",
        ")",
        "\\",
        "' OR 1=1 --",
        "<->",
        "!!!!",
        "a:*B & 'c d'",
        "-",
        "or",
        "\"unclosed",
    ] {
        search(&app, None, &[("q", q)]).await;
    }
    let page = search(&app, None, &[("q", "iph\u{0}one")]).await;
    assert_eq!(titles(&page)[0], "Apple iPhone 15 Pro", "NUL stripped");

    // Bad parameters are 400s.
    let long = "x".repeat(201);
    for query in [
        vec![("q", long.as_str())],
        vec![("sort", "relevance")],
        vec![("sort", "sideways")],
        vec![("min_price", "-1")],
        vec![("min_price", "10"), ("max_price", "5")],
        vec![("rating_min", "6")],
        vec![("attributes", "colour")],
        vec![("attributes", "Colour:red")],
        vec![("category", "a\u{0}b")],
        vec![("limit", "0")],
    ] {
        let (status, body) = status_of(&app, &query).await;
        assert_eq!(status, 400, "{query:?}: {body}");
    }
}

#[tokio::test]
async fn each_filter_narrows_and_facets_count_the_result() {
    let app = spawn_app().await;
    let admin = staff(&app, &["catalog.categories.manage"]);
    let manager = staff(&app, &["catalog.products.manage"]);
    let (vendor, other) = (seller(&app), seller(&app));
    let clothes = send(
        &app,
        Method::POST,
        "/api/v1/catalog/categories",
        Some(&admin),
        Some(json!({"name": "Clothes"})),
    )
    .await
    .json::<Value>()
    .await
    .unwrap();
    let shoes = send(
        &app,
        Method::POST,
        "/api/v1/catalog/categories",
        Some(&admin),
        Some(json!({"name": "Shoes", "parent_id": clothes["id"]})),
    )
    .await
    .json::<Value>()
    .await
    .unwrap();
    let red = active_product(
        &app,
        &vendor,
        json!({"title": "Red Sneaker", "currency": "USD", "category_id": shoes["id"],
               "tags": ["red", "sport"], "attributes": {"colour": "red", "size": 42},
               "variants": [{"sku": "RS-1", "price": 5000, "on_hand": 3}]}),
    )
    .await;
    let blue = active_product(
        &app,
        &vendor,
        json!({"title": "Blue Sneaker", "currency": "USD", "category_id": shoes["id"], "price": 12000,
               "tags": ["blue", "sport"], "attributes": {"colour": "blue", "size": 43}}),
    )
    .await;
    active_product(
        &app,
        &manager,
        json!({"title": "Red Hat", "currency": "USD", "category_id": clothes["id"], "price": 1500,
               "featured": true, "tags": ["red"], "attributes": {"colour": "red", "waterproof": true}}),
    )
    .await;
    active_product(
        &app,
        &other,
        json!({"title": "Green Mug", "currency": "USD", "price": 800, "tags": ["kitchen"]}),
    )
    .await;
    // Ratings are kept by reviews; set here directly: the red sneaker 5.0, the blue 3.0.
    for (p, sum, count) in [(&red, 5, 1), (&blue, 6, 2)] {
        sqlx::query(
            "UPDATE catalog.products SET rating_sum = $2, rating_count = $3 WHERE id = $1::uuid",
        )
        .bind(p["id"].as_str().unwrap())
        .bind(sum as i64)
        .bind(count)
        .execute(&app.db)
        .await
        .unwrap();
    }

    let shoes_id = shoes["id"].as_str().unwrap();
    for (query, expected) in [
        (
            vec![("category", "clothes")],
            vec!["Blue Sneaker", "Red Hat", "Red Sneaker"],
        ),
        (
            vec![("category", shoes_id)],
            vec!["Blue Sneaker", "Red Sneaker"],
        ),
        (
            vec![("min_price", "1000"), ("max_price", "6000")],
            vec!["Red Hat", "Red Sneaker"],
        ),
        (vec![("max_price", "800")], vec!["Green Mug"]),
        (vec![("tags", "red")], vec!["Red Hat", "Red Sneaker"]),
        (vec![("tags", "Red, sport")], vec!["Red Sneaker"]),
        (
            vec![("attributes", "colour:red")],
            vec!["Red Hat", "Red Sneaker"],
        ),
        (vec![("attributes", "size:42")], vec!["Red Sneaker"]),
        (
            vec![("attributes", "colour:red,waterproof:true")],
            vec!["Red Hat"],
        ),
        (vec![("attributes", "colour:green")], vec![]),
        (vec![("rating_min", "4")], vec!["Red Sneaker"]),
        (
            vec![("rating_min", "3")],
            vec!["Blue Sneaker", "Red Sneaker"],
        ),
        (vec![("seller_id", other.id.as_str())], vec!["Green Mug"]),
        (vec![("featured", "true")], vec!["Red Hat"]),
        (vec![("in_stock", "true")], vec!["Red Sneaker"]),
        (
            vec![("in_stock", "false")],
            vec!["Blue Sneaker", "Green Mug", "Red Hat"],
        ),
        (
            vec![("q", "sneaker"), ("tags", "blue")],
            vec!["Blue Sneaker"],
        ),
    ] {
        let page = search(&app, None, &query).await;
        assert_eq!(title_set(&page), expected, "{query:?}");
        assert_eq!(
            page["total"]["value"],
            expected.len(),
            "{query:?}: the total counts the filtered result"
        );
    }

    // Facets of everything.
    let page = search(&app, None, &[]).await;
    assert_eq!(page["total"], json!({"value": 4, "relation": "eq"}));
    let f = &page["facets"];
    let cats: Vec<(String, i64)> = f["categories"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            (
                c["slug"].as_str().unwrap().into(),
                c["count"].as_i64().unwrap(),
            )
        })
        .collect();
    assert_eq!(cats, [("shoes".into(), 2), ("clothes".into(), 1)]);
    assert_eq!(
        f["prices"],
        json!([
            {"min": 0, "max": 1000, "count": 1},
            {"min": 1000, "max": 2500, "count": 1},
            {"min": 5000, "max": 10000, "count": 1},
            {"min": 10000, "max": 25000, "count": 1}
        ])
    );
    assert_eq!(
        f["tags"],
        json!([
            {"value": "red", "count": 2}, {"value": "sport", "count": 2},
            {"value": "blue", "count": 1}, {"value": "kitchen", "count": 1}
        ])
    );
    assert_eq!(
        f["attributes"],
        json!([
            {"key": "colour", "values": [{"value": "red", "count": 2}, {"value": "blue", "count": 1}]},
            {"key": "size", "values": [{"value": 42, "count": 1}, {"value": 43, "count": 1}]},
            {"key": "waterproof", "values": [{"value": true, "count": 1}]}
        ])
    );

    // Facets of a filtered result; and none when refused.
    let page = search(&app, None, &[("category", "shoes")]).await;
    assert_eq!(
        page["facets"]["tags"],
        json!([{"value": "sport", "count": 2}, {"value": "blue", "count": 1}, {"value": "red", "count": 1}])
    );
    let page = search(&app, None, &[("facets", "false")]).await;
    assert!(page.get("facets").is_none());
    assert_eq!(page["total"]["value"], 4);
}

/// Pages through `query` two at a time, returning the ids in order.
async fn all_pages(app: &TestApp, query: &[(&str, &str)]) -> Vec<String> {
    let mut ids = Vec::new();
    let mut after: Option<String> = None;
    for page_no in 0.. {
        assert!(page_no < 20, "runaway paging");
        let mut q: Vec<(&str, &str)> = query.to_vec();
        q.push(("limit", "2"));
        if let Some(a) = &after {
            q.push(("after", a));
        }
        let page = search(app, None, &q).await;
        if page_no > 0 {
            assert!(page.get("facets").is_none() && page.get("total").is_none());
        }
        ids.extend(
            page["items"]
                .as_array()
                .unwrap()
                .iter()
                .map(|p| p["id"].as_str().unwrap().to_owned()),
        );
        match page["next"].as_str() {
            Some(n) => after = Some(n.to_owned()),
            None => break,
        }
    }
    ids
}

#[tokio::test]
async fn every_sort_pages_by_keyset_without_gaps_or_duplicates() {
    let app = spawn_app().await;
    let vendor = seller(&app);
    // Prices, ratings and sales with ties, so the id breaks them.
    let spec = [
        ("Widget Alpha", 500, 5, 1, 10),
        ("Widget Beta widget", 500, 4, 1, 0),
        ("Widget Gamma", 900, 9, 2, 10),
        ("Widget Delta", 100, 0, 0, 3),
        ("Widget Epsilon widget widget", 2500, 8, 2, 7),
        ("Widget Zeta", 900, 5, 1, 0),
        ("Widget Eta", 100, 3, 1, 1),
    ];
    let mut all = Vec::new();
    for (title, price, sum, count, sales) in spec {
        let p = active_product(
            &app,
            &vendor,
            json!({"title": title, "currency": "USD", "price": price}),
        )
        .await;
        let id = p["id"].as_str().unwrap().to_owned();
        sqlx::query(
            "UPDATE catalog.products SET rating_sum = $2, rating_count = $3 WHERE id = $1::uuid",
        )
        .bind(&id)
        .bind(sum as i64)
        .bind(count)
        .execute(&app.db)
        .await
        .unwrap();
        // Popularity comes from orders, through the catalog's in-process api.
        let mut conn = app.db.acquire().await.unwrap();
        assert!(
            basalt::domains::catalog::api::record_sales(&mut conn, id.parse().unwrap(), sales)
                .await
                .unwrap()
        );
        all.push(id);
    }
    let everyone: HashSet<&String> = all.iter().collect();

    for sort in [
        "newest",
        "price_asc",
        "price_desc",
        "rating",
        "popularity",
        "relevance",
    ] {
        let mut query = vec![("sort", sort)];
        if sort == "relevance" {
            query.push(("q", "widget"));
        }
        let paged = all_pages(&app, &query).await;
        let mut one_page = query.clone();
        one_page.push(("limit", "100"));
        let whole: Vec<String> = search(&app, None, &one_page).await["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| p["id"].as_str().unwrap().to_owned())
            .collect();
        assert_eq!(
            paged, whole,
            "{sort}: pages join up without gaps or repeats"
        );
        assert_eq!(paged.iter().collect::<HashSet<_>>(), everyone, "{sort}");
        assert_eq!(paged.len(), all.len(), "{sort}");
    }

    // The orders themselves.
    let order = |q: Vec<(&'static str, &'static str)>| {
        let app = &app;
        async move { titles(&search(app, None, &q).await) }
    };
    let by_price = order(vec![("sort", "price_asc")]).await;
    let tier = |from: usize, to: usize| {
        let mut t = by_price[from..to].to_vec();
        t.sort();
        t
    };
    assert_eq!(tier(0, 2), ["Widget Delta", "Widget Eta"]);
    assert_eq!(tier(2, 4), ["Widget Alpha", "Widget Beta widget"]);
    assert_eq!(tier(4, 6), ["Widget Gamma", "Widget Zeta"]);
    assert_eq!(by_price.last().unwrap(), "Widget Epsilon widget widget");
    assert_eq!(
        order(vec![("sort", "price_desc")]).await[0],
        "Widget Epsilon widget widget"
    );
    let by_rating = order(vec![("sort", "rating")]).await;
    let mut top = by_rating[..2].to_vec();
    top.sort();
    assert_eq!(
        top,
        ["Widget Alpha", "Widget Zeta"],
        "5.0 from one rating each"
    );
    assert_eq!(by_rating[2], "Widget Gamma", "4.5");
    assert_eq!(by_rating.last().unwrap(), "Widget Delta", "unrated last");
    let popular = order(vec![("sort", "popularity")]).await;
    assert!(popular[..2].contains(&"Widget Alpha".to_string()));
    assert!(popular[..2].contains(&"Widget Gamma".to_string()));
    assert_eq!(popular[2], "Widget Epsilon widget widget");
    let relevant = order(vec![("q", "widget")]).await;
    assert_eq!(
        relevant[0], "Widget Epsilon widget widget",
        "most mentions first"
    );

    // A cursor belongs to its sort and filters; a made-up one is a 400 too.
    let first = search(&app, None, &[("sort", "price_asc"), ("limit", "2")]).await;
    let next = first["next"].as_str().unwrap();
    for query in [
        vec![("sort", "newest"), ("after", next)],
        vec![("sort", "price_desc"), ("after", next)],
        vec![("sort", "price_asc"), ("tags", "x"), ("after", next)],
        vec![("sort", "price_asc"), ("q", "widget"), ("after", next)],
        vec![("sort", "price_asc"), ("after", "not-a-cursor")],
        vec![("sort", "price_asc"), ("after", "eyJzIjoicHJpY2VfYXNjIn0")],
        vec![("after", &next[..next.len() - 3])],
    ] {
        let (status, body) = status_of(&app, &query).await;
        assert_eq!(status, 400, "{query:?}: {body}");
        assert_eq!(body["code"], "invalid_cursor", "{query:?}: {body}");
    }
    let (status, _) = status_of(&app, &[("sort", "price_asc"), ("after", next)]).await;
    assert_eq!(status, 200);
}

#[tokio::test]
async fn featured_and_popular_shelves_show_active_products_to_everyone() {
    let app = spawn_app().await;
    let manager = staff(&app, &["catalog.products.manage"]);
    let vendor = seller(&app);
    let featured = active_product(
        &app,
        &manager,
        json!({"title": "Featured Lamp", "currency": "USD", "price": 100, "featured": true}),
    )
    .await;
    // Featured but never approved: on no shelf.
    let draft = create_product(
        &app,
        &manager,
        json!({"title": "Featured Draft", "currency": "USD", "featured": true}),
    )
    .await;
    let plain = active_product(&app, &vendor, product_body("Plain Chair")).await;
    let mut conn = app.db.acquire().await.unwrap();
    for (p, n) in [(&plain, 9), (&featured, 2), (&draft, 100)] {
        basalt::domains::catalog::api::record_sales(
            &mut conn,
            p["id"].as_str().unwrap().parse().unwrap(),
            n,
        )
        .await
        .unwrap();
    }

    for who in [None, Some(&manager)] {
        let res = send(
            &app,
            Method::GET,
            &format!("{PRODUCTS}/featured"),
            who,
            None,
        )
        .await;
        assert_eq!(res.status(), 200);
        assert_eq!(titles(&res.json().await.unwrap()), ["Featured Lamp"]);
        let res = send(&app, Method::GET, &format!("{PRODUCTS}/popular"), who, None).await;
        assert_eq!(res.status(), 200);
        assert_eq!(
            titles(&res.json().await.unwrap()),
            ["Plain Chair", "Featured Lamp"]
        );
    }
    // They page like any list.
    let res = send(
        &app,
        Method::GET,
        &format!("{PRODUCTS}/popular?limit=1"),
        None,
        None,
    )
    .await;
    let page: Value = res.json().await.unwrap();
    let next = page["next"].as_str().unwrap();
    let res = send(
        &app,
        Method::GET,
        &format!("{PRODUCTS}/popular?limit=1&after={next}"),
        None,
        None,
    )
    .await;
    assert_eq!(titles(&res.json().await.unwrap()), ["Featured Lamp"]);
    let res = send(
        &app,
        Method::GET,
        &format!("{PRODUCTS}/featured?after=garbage"),
        None,
        None,
    )
    .await;
    assert_eq!(problem(res).await["code"], "invalid_cursor");
}

/// Creates a category (under `parent`) as `admin`, returning its id.
async fn category(app: &TestApp, admin: &Actor, name: &str, parent: Option<&str>) -> String {
    let body = send(
        app,
        Method::POST,
        "/api/v1/catalog/categories",
        Some(admin),
        Some(json!({"name": name, "parent_id": parent})),
    )
    .await
    .json::<Value>()
    .await
    .unwrap();
    body["id"].as_str().unwrap().to_owned()
}

#[tokio::test]
async fn browsing_a_category_newest_first_merges_its_subcategories_page_by_page() {
    // The browse pages each descendant category through its own index range and merges
    // them; the merge must equal the tree's products newest first, with no gaps or repeats
    // across pages, and still show a seller their own drafts.
    let app = spawn_app().await;
    let admin = staff(&app, &["catalog.categories.manage"]);
    let vendor = seller(&app);
    let home = category(&app, &admin, "Home", None).await;
    let kitchen = category(&app, &admin, "Kitchen", Some(&home)).await;
    let garden = category(&app, &admin, "Garden", Some(&home)).await;
    let pots = category(&app, &admin, "Pots", Some(&kitchen)).await;
    let elsewhere = category(&app, &admin, "Elsewhere", None).await;
    let mut expected = Vec::new();
    for (i, cat) in [
        &home, &pots, &garden, &kitchen, &pots, &garden, &elsewhere, &pots,
    ]
    .into_iter()
    .enumerate()
    {
        let p = active_product(
            &app,
            &vendor,
            json!({"title": format!("Thing {i}"), "currency": "USD", "price": 100, "category_id": cat}),
        )
        .await;
        if cat != &elsewhere {
            expected.push(p["id"].as_str().unwrap().to_owned());
        }
    }
    let draft = create_product(
        &app,
        &vendor,
        json!({"title": "Unfinished", "currency": "USD", "price": 100, "category_id": garden}),
    )
    .await;
    expected.reverse();

    for by in [home.as_str(), "home"] {
        let query = [("category", by), ("sort", "newest")];
        assert_eq!(all_pages(&app, &query).await, expected, "by {by}");
        let first = search(&app, None, &[("category", by), ("limit", "3")]).await;
        assert_eq!(first["total"]["value"], expected.len(), "{first}");
        assert_eq!(ids(&first), expected[..3], "{first}");
    }
    let kitchen_only = all_pages(&app, &[("category", &kitchen)]).await;
    assert_eq!(kitchen_only.len(), 4, "kitchen and pots: {kitchen_only:?}");

    // The seller sees their draft, in its place (the newest).
    let own = search(
        &app,
        Some(&vendor),
        &[("category", &home), ("limit", "100")],
    )
    .await;
    assert_eq!(ids(&own)[0], draft["id"].as_str().unwrap());
    assert_eq!(ids(&own)[1..], expected[..]);
}

#[tokio::test]
async fn a_first_page_past_the_count_cap_still_shows_the_best_matches() {
    // A first page sorts the capped matches when they are all there, and pages from all of
    // them when there are more: past the cap, the page must still be the best of the whole
    // result, not of the first 10,000 found.
    let app = spawn_app().await;
    let admin = staff(&app, &["catalog.categories.manage"]);
    let vendor = seller(&app);
    let bulk = category(&app, &admin, "Bulk", None).await;
    // 10,050 plain products, written straight to the table (the API would take minutes).
    sqlx::query(
        "WITH x AS (SELECT g, gen_random_uuid() AS id FROM generate_series(1, 10050) g)
         , p AS (INSERT INTO catalog.products (id, seller_id, title, slug, status, category_id,
                                               currency, created_at, published_at)
                 SELECT id, $1::uuid, 'Crate ' || g, 'crate-' || g, 'active', $2::uuid, 'USD',
                        now() - interval '1 day' - g * interval '1 second', now()
                   FROM x RETURNING id, slug)
         INSERT INTO catalog.product_slugs (slug, product_id) SELECT slug, id FROM p",
    )
    .bind(&vendor.id)
    .bind(&bulk)
    .execute(&app.db)
    .await
    .unwrap();
    // The newest and the most relevant are made through the API, last.
    let newest = active_product(
        &app,
        &vendor,
        json!({"title": "Crate crate crate deluxe", "currency": "USD", "price": 100, "category_id": bulk}),
    )
    .await;
    let newest = newest["id"].as_str().unwrap();

    let browse = search(&app, None, &[("category", "bulk"), ("limit", "5")]).await;
    assert_eq!(browse["total"], json!({"value": 10_000, "relation": "gte"}));
    assert_eq!(ids(&browse)[0], newest, "newest of all 10,051");
    let found = search(&app, None, &[("q", "crate"), ("limit", "5")]).await;
    assert_eq!(found["total"]["relation"], "gte");
    assert_eq!(ids(&found)[0], newest, "most relevant of all 10,051");
    let cheapest = search(
        &app,
        None,
        &[("category", "bulk"), ("sort", "price_desc"), ("limit", "1")],
    )
    .await;
    assert_eq!(ids(&cheapest), [newest], "the only priced product");
}

fn ids(page: &Value) -> Vec<String> {
    page["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["id"].as_str().unwrap().to_owned())
        .collect()
}
