/*
 * CausalFusion Lab chart runtime (browser). Loaded once per page after vega, vega-lite, vega-embed, plotly and
 * d3; draws every `.cf-chart` output: finds its JSON spec, renders it with the chart's renderer into the live
 * container, and hides the static SVG fallback only once the interactive chart is drawn. Colours and all
 * numbers come from the spec (built in Node), so the static and interactive pictures agree.
 */
(function () {
  'use strict';
  var d3 = window.d3;

  function b64bytes(s) {
    var bin = atob(s);
    var out = new Uint8Array(bin.length);
    for (var i = 0; i < bin.length; i++) out[i] = bin.charCodeAt(i);
    return out;
  }

  function title(el, text) {
    d3.select(el).append('div').attr('class', 'cf-title').style('font', 'bold 13px sans-serif').style('margin', '4px 0 6px').text(text);
  }

  function tooltip(el) {
    return d3
      .select(el)
      .style('position', 'relative')
      .append('div')
      .attr('class', 'cf-tooltip')
      .style('position', 'absolute')
      .style('pointer-events', 'none')
      .style('background', 'rgba(255,255,255,0.95)')
      .style('border', '1px solid #999')
      .style('padding', '3px 6px')
      .style('font', '11px sans-serif')
      .style('white-space', 'pre')
      .style('display', 'none');
  }

  function showTip(tip, el, ev, text) {
    var r = el.getBoundingClientRect();
    tip.style('display', 'block').style('left', ev.clientX - r.left + 14 + 'px').style('top', ev.clientY - r.top + 10 + 'px').text(text);
  }

  /** Draws a grey image (uint8, size x size) scaled onto a canvas context at (x, y). */
  function drawGrey(ctx, bytes, size, x, y, scale) {
    var img = ctx.createImageData(size, size);
    for (var i = 0; i < size * size; i++) {
      img.data[4 * i] = img.data[4 * i + 1] = img.data[4 * i + 2] = bytes[i];
      img.data[4 * i + 3] = 255;
    }
    var c = document.createElement('canvas');
    c.width = c.height = size;
    c.getContext('2d').putImageData(img, 0, 0);
    ctx.imageSmoothingEnabled = false;
    ctx.drawImage(c, x, y, size * scale, size * scale);
  }

  function legend(el, items) {
    var row = d3.select(el).append('div').style('font', '11px sans-serif').style('margin', '4px 0');
    items.forEach(function (it) {
      var s = row.append('span').style('margin-right', '12px');
      s.append('span').style('display', 'inline-block').style('width', '10px').style('height', '10px').style('background', it.color).style('margin-right', '4px');
      s.append('span').text(it.label);
    });
  }

  function describe(p, roles) {
    return p[0] === 0 ? 'condition token ' + p[2] : roles[p[0]] + ' token ' + p[2] + ' (AR step ' + (p[1] + 1) + ')';
  }

  // ----- generalized causal mask (canvas: fine up to thousands of positions) -----
  function drawMask(el, s) {
    title(el, s.title);
    var n = s.n;
    var cell = Math.max(1, Math.min(12, Math.floor(560 / n)));
    var off = 14;
    var allowed = b64bytes(s.allowed);
    var canvas = d3.select(el).append('canvas').attr('width', off + n * cell).attr('height', off + n * cell).style('cursor', 'crosshair').node();
    var ctx = canvas.getContext('2d');
    var roleColor = s.colors.roles;
    s.positions.forEach(function (p, i) {
      ctx.fillStyle = roleColor[p[0]];
      ctx.fillRect(0, off + i * cell, off - 3, cell);
      ctx.fillRect(off + i * cell, 0, cell, off - 3);
    });
    for (var r = 0; r < n; r++)
      for (var c = 0; c < n; c++) {
        if (!allowed[r * n + c]) continue;
        ctx.fillStyle = s.colorBy === 'step' && s.positions[c][0] !== 0 ? s.colors.steps[s.positions[c][1]] : roleColor[s.positions[c][0]];
        ctx.fillRect(off + c * cell, off + r * cell, cell, cell);
      }
    ctx.strokeStyle = '#333';
    ctx.strokeRect(off, off, n * cell, n * cell);
    var items = [
      { color: roleColor[0], label: 'condition' },
      { color: roleColor[1], label: 'clean' },
      { color: roleColor[2], label: 'noisy' },
    ];
    if (s.colorBy === 'step') items.push({ color: s.colors.steps[0], label: 'cells: AR step 1' }, { color: s.colors.steps[s.colors.steps.length - 1], label: 'AR step ' + s.colors.steps.length + ' (of the key)' });
    items.push({ color: '#fff', label: 'blank = masked (rows: queries, columns: keys)' });
    legend(el, items);
    var tip = tooltip(el);
    d3.select(canvas)
      .on('mousemove', function (ev) {
        var b = canvas.getBoundingClientRect();
        var c = Math.floor((ev.clientX - b.left - off) / cell);
        var r = Math.floor((ev.clientY - b.top - off) / cell);
        if (r < 0 || c < 0 || r >= n || c >= n) return tip.style('display', 'none');
        showTip(tip, el, ev, 'query ' + r + ': ' + describe(s.positions[r], s.roleNames) + '\nkey ' + c + ': ' + describe(s.positions[c], s.roleNames) + '\n' + (allowed[r * n + c] ? 'may attend' : 'masked'));
      })
      .on('mouseleave', function () {
        tip.style('display', 'none');
      });
  }

  // ----- attention of a chosen query over the patch grid, per layer x head; full matrix; rollout -----
  function drawAttention(el, s) {
    title(el, s.title);
    var G = s.grid * s.grid;
    var image = b64bytes(s.image);
    var maps = s.layers.map(function (l) {
      return l.heads.map(function (h) {
        return b64bytes(h.maps);
      });
    });
    var q = s.defaultQuery;
    var top = d3.select(el).append('div').style('display', 'flex').style('gap', '16px').style('align-items', 'flex-start');
    var left = top.append('div');
    left.append('div').style('font', '11px sans-serif').text('Query (click a patch):');
    var big = 8;
    var pick = left.append('canvas').attr('class', 'cf-query-picker').attr('width', s.size * big).attr('height', s.size * big).style('cursor', 'pointer').node();
    var info = left.append('div').attr('class', 'cf-query-info').style('font', '11px sans-serif').style('max-width', s.size * big + 'px');
    var right = top.append('div');
    var tile = Math.max(2, Math.floor(96 / s.size));
    var table = right.append('table').style('border-collapse', 'collapse').style('font', '11px sans-serif');
    var header = table.append('tr');
    header.append('th');
    s.layers[0].heads.forEach(function (h) {
      header.append('th').text(h.label);
    });
    var canvases = s.layers.map(function (l, li) {
      var tr = table.append('tr');
      tr.append('th').style('text-align', 'right').style('padding-right', '4px').text(l.label);
      return l.heads.map(function (h, hi) {
        return tr.append('td').append('canvas').attr('class', 'cf-attn-map').attr('width', s.size * tile).attr('height', s.size * tile).attr('title', l.label + ', ' + h.label).node();
      });
    });
    var tip = tooltip(el);

    function overlay(ctx, m, qi, scale) {
      var p = (s.size / s.grid) * scale;
      for (var g = 0; g < G; g++) {
        var v = m[qi * G + g] / 255;
        if (v <= 0) continue;
        ctx.fillStyle = 'rgba(255,127,14,' + (0.8 * v).toFixed(3) + ')';
        ctx.fillRect((g % s.grid) * p, Math.floor(g / s.grid) * p, p, p);
      }
    }

    function render() {
      var query = s.queries[q];
      var ctx = pick.getContext('2d');
      drawGrey(ctx, image, s.size, 0, 0, big);
      var p = (s.size / s.grid) * big;
      s.queries.forEach(function (qq) {
        ctx.strokeStyle = 'rgba(79,195,247,0.9)';
        ctx.strokeRect((qq.token % s.grid) * p + 1, Math.floor(qq.token / s.grid) * p + 1, p - 2, p - 2);
      });
      ctx.lineWidth = 3;
      ctx.strokeStyle = '#d62728';
      ctx.strokeRect((query.token % s.grid) * p + 1.5, Math.floor(query.token / s.grid) * p + 1.5, p - 3, p - 3);
      ctx.lineWidth = 1;
      info.text('query: ' + query.label + ' — orange: its attention over the image tokens (each map scaled to its maximum); condition-token share in the tooltip');
      canvases.forEach(function (row, li) {
        row.forEach(function (cv, hi) {
          var c2 = cv.getContext('2d');
          drawGrey(c2, image, s.size, 0, 0, tile);
          overlay(c2, maps[li][hi], q, tile);
          cv.title = s.layers[li].label + ', ' + s.layers[li].heads[hi].label + ': condition tokens get ' + (100 * s.layers[li].heads[hi].cond[q]).toFixed(1) + '%';
        });
      });
      el.setAttribute('data-query', String(q));
    }

    d3.select(pick).on('click', function (ev) {
      var b = pick.getBoundingClientRect();
      var p = (s.size / s.grid) * big;
      var token = Math.floor((ev.clientY - b.top) / p) * s.grid + Math.floor((ev.clientX - b.left) / p);
      var found = s.queries.findIndex(function (qq) {
        return qq.token === token;
      });
      if (found >= 0) {
        q = found;
        render();
      } else info.text('token ' + token + ' is not a query here (not generated in this step); pick an outlined patch');
    });
    canvases.forEach(function (row) {
      row.forEach(function (cv) {
        d3.select(cv)
          .on('mousemove', function (ev) {
            showTip(tip, el, ev, cv.title);
          })
          .on('mouseleave', function () {
            tip.style('display', 'none');
          });
      });
    });
    render();
    if (s.matrix) drawMatrix(el, s.matrix, tip, function (row) {
      var found = s.queries.findIndex(function (qq) {
        return qq.row === row;
      });
      if (found >= 0) {
        q = found;
        render();
      }
    });
  }

  /** The full query x key matrix of one layer (head mean) with masked cells hatched grey; clicking a row picks it. */
  function drawMatrix(el, m, tip, onPick) {
    d3.select(el).append('div').style('font', 'bold 12px sans-serif').style('margin', '10px 0 4px').text(m.title);
    var cell = Math.max(1, Math.min(24, Math.floor(480 / Math.max(m.rows, m.cols))));
    var off = 12;
    var cv = d3.select(el).append('canvas').attr('class', 'cf-attn-matrix').attr('width', off + m.cols * cell).attr('height', off + m.rows * cell).node();
    var ctx = cv.getContext('2d');
    var v = b64bytes(m.values);
    var allowed = b64bytes(m.allowed);
    m.rowRoles.forEach(function (r, i) {
      ctx.fillStyle = m.roleColors[r];
      ctx.fillRect(0, off + i * cell, off - 3, cell);
    });
    m.colRoles.forEach(function (r, i) {
      ctx.fillStyle = m.roleColors[r];
      ctx.fillRect(off + i * cell, 0, cell, off - 3);
    });
    for (var r = 0; r < m.rows; r++)
      for (var c = 0; c < m.cols; c++) {
        var k = r * m.cols + c;
        ctx.fillStyle = allowed[k] ? d3.interpolateOranges(v[k] / 255) : '#d9d9d9';
        ctx.fillRect(off + c * cell, off + r * cell, cell, cell);
      }
    d3.select(cv)
      .on('mousemove', function (ev) {
        var b = cv.getBoundingClientRect();
        var c = Math.floor((ev.clientX - b.left - off) / cell);
        var r = Math.floor((ev.clientY - b.top - off) / cell);
        if (r < 0 || c < 0 || r >= m.rows || c >= m.cols) return tip.style('display', 'none');
        showTip(tip, el, ev, m.rowLabels[r] + '\n→ ' + m.colLabels[c] + '\n' + (allowed[r * m.cols + c] ? 'weight ' + ((v[r * m.cols + c] / 255) * m.rowMax[r]).toFixed(4) : 'masked'));
      })
      .on('mouseleave', function () {
        tip.style('display', 'none');
      })
      .on('click', function (ev) {
        var b = cv.getBoundingClientRect();
        onPick(Math.floor((ev.clientY - b.top - off) / cell));
      });
    legend(el, [
      { color: d3.interpolateOranges(1), label: 'high attention' },
      { color: d3.interpolateOranges(0.1), label: 'low' },
      { color: '#d9d9d9', label: 'masked by the generalized causal mask' },
    ]);
  }

  // ----- generation order with a slider / play button -----
  function drawOrder(el, s) {
    title(el, s.title);
    var S = s.steps.length;
    var cell = Math.max(14, Math.floor(224 / s.grid));
    var frames = s.frames.map(b64bytes);
    var row = d3.select(el).append('div').style('display', 'flex').style('gap', '18px').style('align-items', 'flex-start');
    var svg = row.append('svg').attr('width', s.grid * cell).attr('height', s.grid * cell).attr('font-family', 'sans-serif').attr('font-size', 10);
    var stepOf = new Array(s.grid * s.grid).fill(-1);
    s.steps.forEach(function (ps, k) {
      ps.forEach(function (p) {
        stepOf[p] = k;
      });
    });
    var cells = svg
      .selectAll('g')
      .data(stepOf)
      .join('g')
      .attr('transform', function (_, i) {
        return 'translate(' + (i % s.grid) * cell + ',' + Math.floor(i / s.grid) * cell + ')';
      });
    cells
      .append('rect')
      .attr('width', cell - 1)
      .attr('height', cell - 1)
      .attr('fill', function (k) {
        return k < 0 ? '#bbb' : s.colors.steps[k];
      })
      .append('title')
      .text(function (k, i) {
        return 'token ' + i + (k < 0 ? ' (kept)' : ', AR step ' + (k + 1));
      });
    if (cell >= 14)
      cells
        .append('text')
        .attr('x', cell / 2)
        .attr('y', cell / 2 + 3)
        .attr('text-anchor', 'middle')
        .attr('fill', function (k) {
          return k / Math.max(1, S - 1) > 0.5 ? 'white' : '#222';
        })
        .text(function (k) {
          return k < 0 ? '' : k + 1;
        });
    var right = row.append('div');
    var scale = Math.max(2, Math.floor(224 / s.size));
    var cv = right.append('canvas').attr('class', 'cf-order-image').attr('width', s.size * scale).attr('height', s.size * scale).node();
    var controls = right.append('div').style('font', '11px sans-serif').style('margin-top', '4px');
    var play = controls.append('button').attr('class', 'cf-play').text('▶ play');
    var slider = controls.append('input').attr('type', 'range').attr('class', 'cf-order-slider').attr('min', 0).attr('max', S).attr('value', S).style('vertical-align', 'middle');
    var label = controls.append('span').style('margin-left', '6px');
    var timer = null;
    function show(k) {
      drawGrey(cv.getContext('2d'), frames[k], s.size, 0, 0, scale);
      cells.select('rect').attr('opacity', function (st) {
        return st < 0 || st < k ? 1 : 0.25;
      });
      label.text(k === 0 ? 'before AR step 1 (' + s.startLabel + ')' : 'after AR step ' + k + ' of ' + S);
      el.setAttribute('data-step', String(k));
    }
    slider.on('input', function () {
      show(+this.value);
    });
    play.on('click', function () {
      if (timer) {
        timer.stop();
        timer = null;
        return play.text('▶ play');
      }
      var k = 0;
      play.text('❚❚ pause');
      timer = d3.interval(function () {
        slider.property('value', k);
        show(k);
        if (++k > S) {
          timer.stop();
          timer = null;
          play.text('▶ play');
        }
      }, Math.max(150, 1500 / S));
    });
    show(S);
  }

  // ----- a labelled grid of small images (AR step x diffusion step x0 predictions, sample grids) -----
  function drawFrames(el, s) {
    title(el, s.title);
    var scale = Math.max(1, Math.floor(s.cellPx / s.size));
    var table = d3.select(el).append('table').style('border-collapse', 'collapse').style('font', '11px sans-serif');
    var head = table.append('tr');
    head.append('th').text(s.rowTitle + ' \\ ' + s.colTitle);
    s.cols.forEach(function (c) {
      head.append('th').text(c);
    });
    var tip = tooltip(el);
    s.rows.forEach(function (r, ri) {
      var tr = table.append('tr');
      tr.append('th').style('text-align', 'right').style('padding-right', '4px').text(r);
      s.cols.forEach(function (c, ci) {
        var data = s.cells[ri * s.cols.length + ci];
        var td = tr.append('td').style('padding', '1px');
        if (!data) return;
        var cv = td.append('canvas').attr('width', s.size * scale).attr('height', s.size * scale).node();
        drawGrey(cv.getContext('2d'), b64bytes(data), s.size, 0, 0, scale);
        d3.select(cv)
          .on('mousemove', function (ev) {
            showTip(tip, el, ev, s.rowTitle + ' ' + r + ', ' + s.colTitle + ' ' + c);
          })
          .on('mouseleave', function () {
            tip.style('display', 'none');
          });
      });
    });
  }

  var renderers = {
    'vega-lite': function (el, s) {
      return window.vegaEmbed(el, s, { renderer: 'svg', actions: { export: true, source: false, compiled: false, editor: false } });
    },
    plotly: function (el, s) {
      return window.Plotly.newPlot(el, s.data, s.layout, { displaylogo: false, responsive: true });
    },
    'd3-mask': drawMask,
    'd3-attention': drawAttention,
    'd3-order': drawOrder,
    'd3-frames': drawFrames,
  };

  /** The global each renderer needs besides d3 (sent with the first chart that uses it). */
  var NEEDS = { 'vega-lite': 'vegaEmbed', plotly: 'Plotly' };

  function mount(id) {
    var host = document.getElementById(id);
    if (!host || host.getAttribute('data-mounted')) return;
    var c = JSON.parse(host.querySelector('script.cf-spec').textContent);
    // its library is not on the page yet: the setup output that brings it calls mountAll
    if (NEEDS[c.renderer] && !window[NEEDS[c.renderer]]) return;
    host.setAttribute('data-mounted', 'true');
    var live = host.querySelector('.cf-live');
    var done = function () {
      host.querySelector('.cf-static').style.display = 'none';
      host.setAttribute('data-rendered', 'true');
    };
    var fail = function (e) {
      live.textContent = 'interactive chart failed (' + e.message + '); the static picture above is shown instead';
      console.error('[causalfusion viz] ' + c.title + ': ' + e.message);
    };
    try {
      var r = renderers[c.renderer](live, c.spec);
      if (r && typeof r.then === 'function') r.then(done, fail);
      else done();
    } catch (e) {
      fail(e);
    }
  }

  /** Draws every chart on the page that is not drawn yet (outputs restored from a saved notebook included). */
  function mountAll() {
    Array.prototype.forEach.call(document.querySelectorAll('.cf-chart'), function (n) {
      mount(n.id);
    });
  }

  /**
   * What each chart on the page drew (for tests and debugging): renderer, whether it rendered, whether a
   * canvas holds more than two colours, how many SVG marks it has, its size, and whether the fallback is hidden.
   */
  function report() {
    return Array.prototype.map.call(document.querySelectorAll('.cf-chart'), function (c) {
      var live = c.querySelector('.cf-live');
      var inked = Array.prototype.some.call(live.querySelectorAll('canvas'), function (cv) {
        var d = cv.getContext('2d').getImageData(0, 0, cv.width, cv.height).data;
        var seen = new Set();
        for (var i = 0; i < d.length; i += 4 * 97) seen.add((d[i] << 16) | (d[i + 1] << 8) | d[i + 2]);
        return seen.size > 2;
      });
      var box = live.getBoundingClientRect();
      return {
        renderer: c.getAttribute('data-renderer'),
        rendered: c.getAttribute('data-rendered') === 'true',
        inked: inked,
        marks: live.querySelectorAll('svg path, svg rect, svg line, svg text').length,
        w: box.width,
        h: box.height,
        staticHidden: c.querySelector('.cf-static').style.display === 'none',
      };
    });
  }

  window.causalfusionViz = { mount: mount, mountAll: mountAll, renderers: renderers, report: report };
})();
