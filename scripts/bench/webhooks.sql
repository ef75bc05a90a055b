-- The Stripe webhook benchmark's data (scripts/bench.sh, BENCH_ONLY=webhooks): :payments
-- unpaid orders of 10.00 USD, each with an open Stripe payment `pi_bench_<n>`, so every
-- benchmark event finds its payment: the subscriber appends a ledger row, moves the payment
-- and settles the order. The orders have no lines (nothing to commit in the catalog), so
-- what is measured is the webhook and the payment path, not stock.
INSERT INTO orders.orders (id, number, user_id, cart_id, status, currency, subtotal, discount,
                           tax, shipping, total, tax_inclusive, payment_provider,
                           hold_expires_at)
SELECT md5('order' || n)::uuid, 'BS-BENCH' || n, md5('user' || n)::uuid,
       md5('cart' || n)::uuid, 'pending_payment', 'USD', 1000, 0, 0, 0, 1000, false, 'stripe',
       now() + interval '1 day'
  FROM generate_series(1, :payments) AS n;

INSERT INTO orders.payments (id, order_id, seq, provider, reference, status, amount, currency,
                             client)
SELECT md5('payment' || n)::uuid, md5('order' || n)::uuid, 1, 'stripe', 'pi_bench_' || n,
       'requires_payment_method', 1000, 'USD',
       jsonb_build_object('client_secret', 'pi_bench_' || n || '_secret_x')
  FROM generate_series(1, :payments) AS n;

-- :starts more unpaid orders without a payment, for POST /orders/{id}/payment.
INSERT INTO orders.orders (id, number, user_id, cart_id, status, currency, subtotal, discount,
                           tax, shipping, total, tax_inclusive, payment_provider,
                           hold_expires_at)
SELECT md5('start-order' || n)::uuid, 'BS-START' || n, md5('start-user' || n)::uuid,
       md5('start-cart' || n)::uuid, 'pending_payment', 'USD', 1000, 0, 0, 0, 1000, false,
       'stripe', now() + interval '1 day'
  FROM generate_series(1, :starts) AS n;
